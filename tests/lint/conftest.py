"""Paths to the lint tests' per-rule fixture files (the CLI runner is tests/conftest.py's ``run_berth``)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(__file__).parent / "data"
