"""Fixtures for spec tests: spec files to feed ``berth`` (its runners are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write spec text to a fresh file and return its path."""
    counter = iter(range(10_000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
