"""Pod templates inside training custom resources reach every pod rule, placed on the resource's own lines.

One manifest per kind under ``data/training/`` (JobSet, LeaderWorkerSet, RayCluster/RayJob,
MPIJob, PyTorchJob, TFJob, TrainJob/ClusterTrainingRuntime) pins its findings with the same
``# expect:`` lines as the rule fixtures: for every rule a file names, exactly those findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.lint.engine import LintOptions, lint_objects, lint_paths
from berth.lint.rules._training import TRAINING_KINDS

from .conftest import DATA
from .test_rules import expectations

TRAINING = DATA / "training"
FILES = sorted(TRAINING.glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_training_resource_findings(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path} pins no finding"
    named = {rule for rule, *_ in expected}
    result = lint_paths([str(path)], LintOptions(jobs=1))
    got = sorted((f.rule, f.line, f.column, f.message) for f in result.findings if f.rule in named)
    assert got == sorted((rule, line, col, msg) for rule, line, col, msg in expected)


def test_every_kind_has_a_manifest() -> None:
    kinds = {
        line.split(":", 1)[1].strip() for p in FILES for line in p.read_text().splitlines() if line.startswith("kind:")
    }
    assert kinds >= TRAINING_KINDS - {"XGBoostJob", "PaddleJob", "MXJob", "JAXJob", "RayService", "TrainingRuntime"}


def test_findings_name_the_resource_and_its_path() -> None:
    result = lint_paths([str(TRAINING / "pytorchjob.yaml")], LintOptions(jobs=1))
    rank = next(f for f in result.findings if f.rule == "constant-rank-env")
    assert (rank.kind, rank.name, rank.namespace) == ("PyTorchJob", "llama-finetune", "ml")
    assert rank.to_json()["path"] == "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].env[0].value"


def test_suppression_on_the_resource_applies_to_its_templates() -> None:
    obj = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "x", "annotations": {"berth.dev/ignore": "image-latest-tag: nightly smoke test"}},
        "spec": {
            "pytorchReplicaSpecs": {
                "Worker": {"replicas": 2, "template": {"spec": {"containers": [{"name": "t", "image": "t:latest"}]}}}
            }
        },
    }
    rules = {f.rule for f in lint_objects([obj], LintOptions(jobs=1)).findings}
    assert "image-latest-tag" not in rules
    assert "run-as-root" in rules  # the template was linted


def test_trainjob_runtime_owned_fields_are_not_blamed_on_the_trainjob() -> None:
    result = lint_paths([str(TRAINING / "trainjob.yaml")], LintOptions(jobs=1))
    on_trainjob = {f.rule for f in result.findings if f.kind == "TrainJob"}
    assert "privilege-escalation" not in on_trainjob and "run-as-root" not in on_trainjob


def test_pool_places_cross_object_findings_in_resources(tmp_path: Path) -> None:
    """Views travel from worker processes to the parent (cross-object rules) and are placed alike."""
    for i in range(70):
        (tmp_path / f"job{i}.yaml").write_text((TRAINING / "pytorchjob.yaml").read_text())
    one = lint_paths([str(tmp_path)], LintOptions(jobs=1, group_by="file"))
    many = lint_paths([str(tmp_path)], LintOptions(jobs=2, group_by="file"))
    assert [f.to_json() for f in one.findings] == [f.to_json() for f in many.findings]
