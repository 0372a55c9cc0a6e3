"""berth's own rendered examples lint with zero errors and warnings (suppressions have reasons)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from berth.contract import ANNOTATION_IGNORE
from berth.lint.config import load_config
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.model import DocRef, Document, Severity
from berth.lint.rules import all_rules
from berth.lint.suppress import parse_ignore

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


def test_every_suppression_still_matches_a_finding(tmp_path: Path) -> None:
    """A stale suppression hides nothing and should go: each one in an example silences a real finding."""
    suppressed = 0
    for example in EXAMPLES:
        spec = yaml.safe_load(example.read_text())
        annotations = spec["metadata"].get("annotations", {})
        rules = parse_ignore(Document(DocRef("", 0), spec), frozenset(all_rules())).rules
        if not rules:
            continue
        annotations.pop(ANNOTATION_IGNORE)
        bare = tmp_path / example.name
        bare.write_text(yaml.safe_dump(spec))
        raw = {f.rule for f in lint_paths([str(bare)], LintOptions(jobs=1)).findings}
        for rule in rules:
            assert rule in raw, f"{example.name}: {rule} is suppressed but never reported"
        suppressed += len(rules)
    assert suppressed >= 4
