"""Fixtures for spec tests: run the real ``berth`` entry point and read what a user would see."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_helpers import CliResult, RunBerth


@pytest.fixture
def berth(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunBerth:
    """Call ``berth.cli.app.main`` (the console script's function) in-process with argv.

    In-process keeps 50 bad specs fast; tests/spec/test_spec_cli_process.py runs a sample
    through a real ``python -m berth`` process to prove the two agree.
    """
    from berth.cli.app import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["berth", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write spec text to a fresh file and return its path."""
    counter = iter(range(10_000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
