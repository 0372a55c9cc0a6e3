"""Fixtures for render tests: every example, loaded and rendered once per session (``berth`` is tests/conftest.py's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from berth.spec.model import TrainingCluster

from .render_helpers import SPECS


@dataclass(frozen=True)
class Rendered:
    """An example spec and the objects berth renders from it, in apply order."""

    name: str
    spec: TrainingCluster
    objects: list[dict[str, Any]]

    def one(self, kind: str) -> dict[str, Any]:
        """The single object of ``kind``."""
        found = [o for o in self.objects if o["kind"] == kind]
        assert len(found) == 1, f"{self.name}: {len(found)} objects of kind {kind}"
        return found[0]


@pytest.fixture(scope="session")
def examples() -> dict[str, Rendered]:
    """Example name (file stem) → its spec and rendered objects; includes the issue's own example."""
    from berth.render import render_all
    from berth.spec.load import load_spec

    out = {}
    for path in SPECS:
        spec = load_spec(path)
        out[path.stem] = Rendered(path.stem, spec, render_all(spec))
    return out
