"""`berth plan` lints the objects it already holds in memory: no temporary file, same findings."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from berth.contract import ANNOTATION_IGNORE
from berth.kube.apply import desired_objects
from berth.kube.plan import lint_findings
from berth.spec.load import load_spec

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-tensorflow.yaml"


def test_plan_lints_in_memory_without_a_temporary_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_files(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("plan must not write its rendered stack to a file to lint it")

    objects = desired_objects(load_spec(SEED))
    # The example suppresses its :latest image; without the suppression plan has a finding to report.
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
    del sts["metadata"]["annotations"][ANNOTATION_IGNORE]
    for name in ("TemporaryDirectory", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_files)
    findings = lint_findings(objects)
    monkeypatch.undo()
    assert any(f["rule"] == "image-latest-tag" and f["kind"] == "StatefulSet" for f in findings)
    assert [(f["rule"], f["kind"], f["name"]) for f in findings] == [
        (f["rule"], f["kind"], f["name"]) for f in _linted_as_a_file(objects, tmp_path)
    ]


def _linted_as_a_file(objects: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """What `berth lint` says about the same stack written out: plan must agree with it."""
    from berth.lint import lint_paths
    from berth.render.output import to_stream

    rendered = tmp / "rendered.yaml"
    rendered.write_text(to_stream(objects), encoding="utf-8")
    return [f.to_json() for f in lint_paths([str(rendered)]).findings]
