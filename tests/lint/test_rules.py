"""Every rule has a doc, a failing fixture that triggers it and a passing one that does not."""

from __future__ import annotations

import re

import pytest

from berth.lint.engine import LintOptions, lint_paths
from berth.lint.rules import all_rules

from .conftest import FIXTURES

RULES = sorted(all_rules())
OPTIONS = LintOptions(jobs=1)


def test_enough_rules() -> None:
    checked = [r for r in all_rules().values() if r.check is not None]
    assert len(checked) >= 35


@pytest.mark.parametrize("rule_id", RULES)
def test_bad_fixture_triggers(rule_id: str) -> None:
    bad = FIXTURES / rule_id / "bad.yaml"
    assert bad.is_file(), f"missing fixture {bad}"
    result = lint_paths([str(bad)], OPTIONS)
    hits = [f for f in result.findings if f.rule == rule_id]
    assert hits, f"{rule_id} did not fire on its bad fixture: {[f.rule for f in result.findings]}"
    assert all(f.line >= 1 for f in hits), "every finding has a position"


@pytest.mark.parametrize("rule_id", RULES)
def test_good_fixture_passes(rule_id: str) -> None:
    good = FIXTURES / rule_id / "good.yaml"
    assert good.is_file(), f"missing fixture {good}"
    result = lint_paths([str(good)], OPTIONS)
    assert [f.message for f in result.findings if f.rule == rule_id] == []
    assert not result.unreadable


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_doc_is_complete(rule_id: str) -> None:
    rule = all_rules()[rule_id]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.id)
    assert rule.kinds or rule.check is None, "a rule with a check names the kinds it applies to"
    for section in ("## What it does", "## Why is this bad?", "## Example", "Use instead:", "## Fix"):
        assert section in rule.doc, f"{rule_id} doc lacks {section!r}"
    assert rule.doc.count("```yaml") >= 2
