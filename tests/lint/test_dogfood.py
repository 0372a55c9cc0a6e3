"""berth's own rendered examples lint with zero errors and warnings (suppressions have reasons)."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from berth.lint.config import load_config
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.model import Severity

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CONFIG = Path(__file__).parent / "dogfood.berth-lint.yaml"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_rendered_example_is_clean(example: Path) -> None:
    result = lint_paths([str(example)], LintOptions(jobs=1, config=load_config(str(CONFIG))))
    assert result.resources > 5, "the spec was rendered and its objects linted"
    assert result.skipped == 0, "every rendered kind has a schema (bundled CRDs included)"
    loud = [f"{f.rule}: {f.kind}/{f.name} {f.message}" for f in result.findings if f.severity >= Severity.WARNING]
    assert loud == []
    assert not result.unreadable


def test_every_suppression_still_matches_a_finding() -> None:
    """A stale suppression hides nothing and should go: each one silences a real finding."""
    config = load_config(str(CONFIG))
    raw = {p: {f.rule for f in lint_paths([str(p)], LintOptions(jobs=1)).findings} for p in EXAMPLES}
    for glob, rules in config.per_file_ignores.items():
        files = [p for p in EXAMPLES if fnmatch.fnmatch(os.path.relpath(p, CONFIG.parent), glob)]
        assert files, f"{glob} matches no example"
        for rule in rules:
            assert any(rule in raw[p] for p in files), f"{glob}: {rule} is suppressed but never reported"
