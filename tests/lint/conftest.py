"""Fixtures for the lint tests: paths to the per-rule fixture files and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(__file__).parent / "data"


@pytest.fixture
def run_berth():
    """Run the real ``berth`` CLI in a subprocess; returns the CompletedProcess."""

    def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "berth", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
        )

    return run
