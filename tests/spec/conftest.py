"""Fixtures for spec tests: run the real ``berth`` entry point and read what a user would see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from spec_helpers import RunBerth, run_main


@pytest.fixture
def berth(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunBerth:
    """Run the ``berth`` console entry point in-process: ``berth("render", path)``."""
    return lambda *args: run_main(args, capsys, monkeypatch)


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write spec text to a fresh file and return its path."""
    counter = iter(range(10_000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
