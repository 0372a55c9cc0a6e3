"""The CLI's entry point behaves like a well-mannered command."""

from __future__ import annotations

import berth

from .conftest import berth_process


def test_version_prints_package_version() -> None:
    out = berth_process("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"berth {berth.__version__}"


def test_help_lists_usage() -> None:
    out = berth_process("--help")
    assert out.returncode == 0
    assert "Usage: berth" in out.stdout


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    out = berth_process("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
