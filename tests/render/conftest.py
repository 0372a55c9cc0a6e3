"""Fixtures for render tests: every example, loaded and rendered once per session."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from render_helpers import SPECS

# The CLI runner lives with the spec tests; share it rather than copy it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spec"))
from spec_helpers import RunBerth, run_main

from berth.spec.model import TrainingCluster


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


@pytest.fixture
def berth(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunBerth:
    """Run the ``berth`` console entry point in-process: ``berth("render", path)``."""
    return lambda *args: run_main(args, capsys, monkeypatch)
