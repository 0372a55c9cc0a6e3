"""Every rule has a doc, a failing fixture that pins its findings (rule, line, column, message) and a passing one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from berth.lint.engine import LintOptions, lint_paths
from berth.lint.rules import all_rules

from .conftest import FIXTURES

RULES = sorted(all_rules())
OPTIONS = LintOptions(jobs=1)


def test_enough_rules() -> None:
    checked = [r for r in all_rules().values() if r.check is not None]
    assert len(checked) >= 35


# One per finding the fixture must produce, ruff-style: ``# expect: <line>:<col> <rule-id>: <message part>``.
EXPECT = re.compile(r"^# expect: (\d+):(\d+) ([a-z0-9-]+): (.+)$")


def expectations(path: Path) -> list[tuple[str, int, int, str]]:
    """The ``# expect:`` lines of a fixture as (rule, line, column, message part)."""
    text = path.read_bytes().decode("utf-8", errors="replace")  # unreadable-file's fixture is not UTF-8
    found = [EXPECT.match(line) for line in text.splitlines()]
    return [(m[3], int(m[1]), int(m[2]), m[4]) for m in found if m]


@pytest.mark.parametrize("rule_id", RULES)
def test_bad_fixture_gives_exactly_the_expected_findings(rule_id: str) -> None:
    """Every finding of the rules the fixture names, and only those: rule, line, column and message."""
    bad = FIXTURES / rule_id / "bad.yaml"
    assert bad.is_file(), f"missing fixture {bad}"
    expected = expectations(bad)
    assert rule_id in {rule for rule, *_ in expected}, f"{bad} has no '# expect: <line>:<col> {rule_id}: ...' line"
    named = {rule for rule, *_ in expected}
    result = lint_paths([str(bad)], OPTIONS)
    got = sorted((f.rule, f.line, f.column, f.message) for f in result.findings if f.rule in named)
    unmatched = list(got)
    for rule, line, column, part in sorted(expected):
        hit = next((g for g in unmatched if g[:3] == (rule, line, column) and part in g[3]), None)
        assert hit is not None, f"expected {line}:{column} {rule}: {part}\ngot {got}"
        unmatched.remove(hit)
    assert unmatched == [], f"findings the fixture does not expect: {unmatched}"


@pytest.mark.parametrize("rule_id", RULES)
def test_good_fixture_passes(rule_id: str) -> None:
    good = FIXTURES / rule_id / "good.yaml"
    assert good.is_file(), f"missing fixture {good}"
    result = lint_paths([str(good)], OPTIONS)
    assert [f.message for f in result.findings if f.rule == rule_id] == []
    assert not result.unreadable
    assert expectations(good) == [], "a good fixture expects no finding"


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_doc_is_complete(rule_id: str) -> None:
    rule = all_rules()[rule_id]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.id)
    assert rule.kinds or rule.check is None, "a rule with a check names the kinds it applies to"
    for section in ("## What it does", "## Why is this bad?", "## Example", "Use instead:", "## Fix"):
        assert section in rule.doc, f"{rule_id} doc lacks {section!r}"
    assert rule.doc.count("```yaml") >= 2
