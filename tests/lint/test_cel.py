"""CEL validation rules of CRDs (``x-kubernetes-validations``), evaluated offline with cel-python.

The rules are upstream's (JobSet, Kubeflow Trainer), carried in the bundled schemas word for word;
a resource the API server would reject for one is a located ``schema-invalid`` finding with the
rule's message, and the same resource made valid has none.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import lark
import yaml

from berth.lint.cel import CelChecker, crd_rules, parser_cache
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.output import text
from berth.lint.schema import _bundled_crds

SCHEMA_ONLY = LintOptions(schema_only=True, jobs=1)

JOBSET = """\
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: ddp}
spec:
  startupPolicy: {startupPolicyOrder: %(order)s}
  replicatedJobs:
  - name: driver
    template: {spec: {template: {spec: {containers: [{name: main, image: busybox:1.36}]}}}}
  - name: workers
    dependsOn: [{name: driver, status: Ready}]
    template: {spec: {template: {spec: {containers: [{name: main, image: busybox:1.36}]}}}}
  volumeClaimPolicies:
  - templates:
    - metadata: {name: scratch%(namespace)s}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""

TRAINJOB = """\
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: llama}
spec:
  runtimeRef: {name: torch-distributed}
  managedBy: %s
"""


def _lint(tmp_path: Path, text: str) -> list[tuple[str, int, int, str]]:
    path = tmp_path / "cr.yaml"
    path.write_text(text)
    return [(f.rule, f.line, f.column, f.message) for f in lint_paths([str(path)], SCHEMA_ONLY).findings]


def test_a_jobset_breaking_upstream_rules_is_located_with_their_messages(tmp_path: Path) -> None:
    got = _lint(tmp_path, JOBSET % {"order": "InOrder", "namespace": ", namespace: other"})
    assert [(rule, line, col) for rule, line, col, _ in got] == [("schema-invalid", 4, 1), ("schema-invalid", 13, 5)]
    assert got[0][3].startswith("StartupPolicy and DependsOn APIs are mutually exclusive (CRD validation rule: ")
    assert got[1][3].startswith("namespace cannot be set for VolumeClaimPolicies templates")


def test_the_same_jobset_made_valid_has_no_finding(tmp_path: Path) -> None:
    assert _lint(tmp_path, JOBSET % {"order": "AnyOrder", "namespace": ""}) == []


def test_a_trainjob_managed_by_an_unknown_controller_is_an_error(tmp_path: Path) -> None:
    got = _lint(tmp_path, TRAINJOB % "example.com/mine")
    assert [(rule, line, col) for rule, line, col, _ in got] == [("schema-invalid", 6, 3)]
    assert "ManagedBy must be trainer.kubeflow.org/trainjob-controller" in got[0][3]
    assert _lint(tmp_path, TRAINJOB % "kueue.x-k8s.io/multikueue") == []


def test_rules_of_a_schema_dir_crd_are_evaluated_and_unsupported_ones_counted(tmp_path: Path) -> None:
    """A user's CRD: a plain rule is enforced; a transition rule and a Kubernetes library call are skipped."""
    rules = [
        {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
        {"rule": "self == oldSelf", "message": "immutable"},
        {"rule": "self.tags.isSorted()", "message": "tags must be sorted"},
    ]
    spec = {
        "type": "object",
        "x-kubernetes-validations": rules,
        "properties": {
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Pool", "plural": "pools"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
                }
            ],
        },
    }
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "pool.yaml").write_text(yaml.safe_dump(crd))
    cr = "apiVersion: example.com/v1\nkind: Pool\nmetadata: {name: p}\n"
    cr += "spec: {minReplicas: 5, maxReplicas: 2, tags: [b, a]}\n"
    (tmp_path / "pool.yaml").write_text(cr)
    options = LintOptions(schema_only=True, jobs=1, schema_dirs=(str(tmp_path / "crds"),))
    result = lint_paths([str(tmp_path / "pool.yaml")], options)
    found = [(f.line, f.column, f.message) for f in result.findings]
    assert len(found) == 1 and found[0][:2] == (4, 1) and "minReplicas must not exceed maxReplicas" in found[0][2]
    assert result.cel_skipped == 2
    assert text(result, colour=False).endswith("; 2 CRD CEL rule checks not evaluated")

    checker = CelChecker()
    obj = yaml.safe_load(cr)
    breaches = checker.check(obj, tuple(crd_rules(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])))
    assert [b.path for b in breaches] == [("spec",)]
    assert checker.skipped == {"transition rule (oldSelf)": 1, "calls isSorted(), which cel-python lacks": 1}


def test_an_evaluation_error_is_counted_not_reported() -> None:
    """A field the API server would default first is missing offline: the rule cannot be judged."""
    checker = CelChecker()
    rules = tuple(crd_rules({"x-kubernetes-validations": [{"rule": "self.order == 'InOrder'", "message": "m"}]}))
    assert checker.check({"other": 1}, rules) == []
    assert checker.skipped == {"evaluation error": 1}


def _jobset_crd() -> dict[str, Any]:
    return next(copy.deepcopy(c) for c in _bundled_crds() if c["spec"]["names"]["kind"] == "JobSet")


def test_the_crd_check_tool_refuses_a_bundled_rule_upstream_lacks(tmp_path: Path) -> None:
    """tools/check_bundled_crds.py: the bundled JobSet against itself passes; against a copy without its rule fails."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "tools"))
    try:
        import check_bundled_crds
    finally:
        sys.path.pop(0)
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(_jobset_crd()))
    assert check_bundled_crds.main([str(same)]) == 0
    stripped = _jobset_crd()
    spec = stripped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["x-kubernetes-validations"]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(stripped))
    assert check_bundled_crds.main([str(other)]) == 1


def test_the_cel_parser_is_cached_and_a_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch: Any) -> None:
    """Each process (each pool worker) loads cel-python's Lark parser from ``parser_cache`` instead of
    building it; a truncated or foreign file there is rebuilt, and the rule still finds the breach."""
    cr = tmp_path / "cr.yaml"
    cr.write_text(JOBSET % {"order": "InOrder", "namespace": ""})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = Path(parser_cache(lark.__version__))
    assert cache.is_relative_to(tmp_path)
    command = [sys.executable, "-m", "berth", "lint", "--schema-only", "-f", "json", str(cr)]
    for damage in (None, b"not a pickle", None):
        if damage is not None:
            cache.write_bytes(damage)
        run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 1, run.stderr
        assert "StartupPolicy" in run.stdout and run.stderr == ""
        assert cache.stat().st_size > 10_000  # written (again): the analysed grammar, not the damage
        assert not list(cache.parent.glob("*.tmp"))
