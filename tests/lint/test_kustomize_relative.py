"""A kustomize patch is told apart whether the input path is absolute or relative.

The patch list of a kustomization names files relative to its directory, which berth resolves
to absolute paths; a file given relatively (``berth lint .``) was compared as written, so a
patch not named like one (``drop-ns.yaml``) was checked as a whole object. Failed before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.lint.engine import LintOptions, lint_paths

DELETE_PATCH = "apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeflow-system}\n$patch: delete\n"


def test_a_patch_named_by_the_kustomization_is_partial_from_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "config" / "default"
    app.mkdir(parents=True)
    (app / "kustomization.yaml").write_text("resources: [namespace.yaml]\npatches:\n- path: drop-ns.yaml\n")
    (app / "drop-ns.yaml").write_text(DELETE_PATCH)
    monkeypatch.chdir(tmp_path)
    for given in ("config", "config/default", "config/default/drop-ns.yaml", str(app)):
        findings = lint_paths([given], LintOptions(jobs=1)).findings
        assert [(f.rule, f.message) for f in findings] == [], given
    # not named as a patch, the same object is a whole Namespace with an unknown field
    (app / "kustomization.yaml").write_text("resources: [namespace.yaml]\n")
    assert [f.rule for f in lint_paths(["config"], LintOptions(jobs=1)).findings] == ["schema-invalid"]
