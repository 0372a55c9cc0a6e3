"""``berth.dev/ignore`` annotations: ``"<rule-id>: <reason>; <rule-id>: <reason>"``."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.contract import ANNOTATION_IGNORE
from berth.lint.model import Document, Path

_PATH: Path = ("metadata", "annotations", ANNOTATION_IGNORE)


@dataclass
class Suppressions:
    """Rules an object suppresses (with a reason) and the malformed entries found."""

    rules: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return _PATH


def parse_ignore(doc: Document, known: set[str] | frozenset[str]) -> Suppressions:
    """Suppressions of ``doc``; an entry without a reason suppresses nothing and is reported."""
    out = Suppressions()
    raw = doc.annotations.get(ANNOTATION_IGNORE)
    if raw is None:
        return out
    for entry in str(raw).split(";"):
        if not entry.strip():
            continue
        rule, sep, reason = entry.partition(":")
        rule, reason = rule.strip(), reason.strip()
        if rule not in known:
            out.problems.append(f"{ANNOTATION_IGNORE} names unknown rule {rule!r}")
        elif not sep or not reason:
            out.problems.append(f"{ANNOTATION_IGNORE} for {rule!r} has no reason: write '{rule}: <why>'")
        else:
            out.rules[rule] = reason
    return out
