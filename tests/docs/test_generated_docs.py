"""Generated reference pages match the code they are generated from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_spec_reference_is_up_to_date() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_spec_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    for field in ("`storageClasses`", "`volumes`", "`sharedVolumes`", "`archive`", "`iopsPerGB`"):
        assert field in text
