"""docs/lint.md is generated from the rules: it must match them exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from berth.lint.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]


def test_lint_reference_is_up_to_date() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_lint_docs.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    text = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    for rule in all_rules():
        assert f"### {rule}\n" in text
