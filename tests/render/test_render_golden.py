"""Golden files: the exact stream ``berth render`` prints for each example.

A change in rendering shows up here as a reviewable diff. Regenerate after an intended change:
``BERTH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/render/test_render_golden.py`` and review ``git diff``.
"""

from __future__ import annotations

import difflib
import os

import pytest

from ..conftest import RunBerth
from .render_helpers import EXAMPLES, GOLDEN

UPDATE = os.environ.get("BERTH_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_matches_golden(example: os.PathLike[str], berth: RunBerth) -> None:
    result = berth("render", str(example))
    assert result.code == 0, result.stderr
    golden = GOLDEN / f"{os.path.basename(example).removesuffix('.yaml')}.yaml"
    if UPDATE:
        golden.write_text(result.stdout, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with BERTH_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), result.stdout.splitlines(True), str(golden), "berth render")
    )
    assert result.stdout == expected, f"rendering changed (BERTH_UPDATE_GOLDEN=1 to accept):\n{diff}"


def test_every_golden_file_has_its_example() -> None:
    """A renamed or deleted example must not leave a stale golden file behind."""
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == {p.stem for p in EXAMPLES}
