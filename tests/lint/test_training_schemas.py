"""Bundled schemas of the training CRDs: real-looking resources validate, mistakes are located, nothing is skipped."""

from __future__ import annotations

import json
from pathlib import Path

from berth.lint.engine import LintOptions, lint_paths
from berth.lint.schema import bundled_schemas

from .conftest import DATA
from .test_rules import expectations

SCHEMA_ONLY = LintOptions(schema_only=True, jobs=1)


def test_every_training_kind_berth_lints_has_a_bundled_schema() -> None:
    from berth.lint.rules._training import TRAINING_KINDS as LINTED

    bundled = {kind for _, kind in bundled_schemas()}
    assert len(LINTED) >= 15
    assert set(LINTED) <= bundled
    assert ("kubeflow.org/v2beta1", "MPIJob") in bundled_schemas()


def test_the_training_samples_validate_and_none_is_skipped() -> None:
    result = lint_paths([str(DATA / "training")], SCHEMA_ONLY)
    assert result.resources >= 9 and result.skipped == 0
    assert [f.message for f in result.findings] == []


def test_mistakes_in_training_resources_are_located() -> None:
    bad = DATA / "training-crds-bad.yaml"
    expected = expectations(bad)
    got = sorted((f.rule, f.line, f.column, f.message) for f in lint_paths([str(bad)], SCHEMA_ONLY).findings)
    assert len(got) == len(expected), got
    for (rule, line, column, part), hit in zip(sorted(expected), got, strict=True):
        assert hit[:3] == (rule, line, column) and part in hit[3], (rule, line, column, part, hit)


def test_null_fields_and_webhook_or_crd_defaults_are_no_errors(tmp_path: Path) -> None:
    """The API server prunes null fields of custom resources and applies defaults before validating."""
    spec = {"type": "object", "required": ["size", "color"]}
    spec["properties"] = {"size": {"type": "integer", "default": 1}, "color": {"type": "string"}}
    version = {"name": "v1", "served": True, "storage": True}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    crd["spec"] = {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "versions": [version]}
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "widget.json").write_text(json.dumps(crd))
    manifest = tmp_path / "m" / "w.yaml"
    manifest.parent.mkdir()
    manifest.write_text(
        """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {color: red}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: v}
spec: {size: 2}
---
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: scaffold}
spec:
  # TODO(user): Add fields here
"""
    )
    options = LintOptions(schema_only=True, jobs=1, schema_dirs=(str(tmp_path / "crds"),))
    found = [(f.line, f.message) for f in lint_paths([str(manifest)], options).findings]
    assert found == [(9, "missing required field 'color'")]
