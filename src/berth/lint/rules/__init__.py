"""The rule registry: one module per rule in this package, discovered at import.

A rule module defines ``RULE = Rule(...)`` with its ruff-style doc as the module
docstring. Rules that only look at one object run in worker processes; ``cross`` rules
look at the whole input (StatefulSet <-> Service <-> PDB <-> PVC <-> StorageClass) and run
once in the parent process.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from berth.lint.model import Document, Path, Severity

if TYPE_CHECKING:
    from berth.lint.context import Context


@dataclass(frozen=True)
class Hit:
    """What a rule reports: where in the object, what is wrong, how to fix it."""

    path: Path
    message: str
    fix: str | None = None


# A rule whose ``kinds`` holds this runs on objects of every kind.
ANY_KIND = "*"

Check = Callable[[Document, "Context"], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    """One lint rule. ``check`` is None for findings the engine itself emits (parse, schema)."""

    id: str
    severity: Severity
    doc: str
    check: Check | None = None
    kinds: frozenset[str] = frozenset()
    cross: bool = False
    equivalents: Mapping[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """First line of the doc: what the rule flags, in one sentence."""
        return self.doc.strip().splitlines()[0].rstrip(".") if self.doc.strip() else self.id


@cache
def all_rules() -> dict[str, Rule]:
    """Every rule by id, sorted by id."""
    found: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        rule: Rule = module.RULE
        if rule.id in found:
            raise RuntimeError(f"duplicate rule id {rule.id}")
        found[rule.id] = rule
    return dict(sorted(found.items()))
