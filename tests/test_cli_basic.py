"""The CLI's entry point behaves like a well-mannered command."""

from __future__ import annotations

import subprocess
import sys

import berth


def _berth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berth", *args], capture_output=True, text=True, check=False
    )


def test_version_prints_package_version() -> None:
    out = _berth("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"berth {berth.__version__}"


def test_help_lists_usage() -> None:
    out = _berth("--help")
    assert out.returncode == 0
    assert "Usage: berth" in out.stdout


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    out = _berth("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
