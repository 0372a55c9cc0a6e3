"""berth scale / gc / down against the real StatefulSet controller: claims created, retained, deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from berth.kube.gc import collect_garbage
from berth.kube.scale import scale
from berth.kube.up import up
from berth.spec.load import load_spec

from .cluster_helpers import admin, berth, claim_names, expected_claims, seed_like, write_spec

pytestmark = pytest.mark.cluster


def _env(kube_client: Any, namespace: str, name: str = "ml-training") -> dict[str, str]:
    from lightkube.resources.apps_v1 import StatefulSet

    sts = kube_client.get(StatefulSet, name, namespace=namespace)
    return {e.name: e.value for e in sts.spec.template.spec.containers[0].env if e.value is not None}


def test_scale_3_to_5_to_2_creates_and_retains_the_right_claims(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    spec = write_spec(tmp_path, seed_like(namespace))
    kube = admin(kubeconfig, namespace)
    up(kube, load_spec(spec), timeout_s=120)
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(3))

    grown = scale(kube, "ml-training", namespace, 5, wait=True, timeout_s=120)
    assert (grown.before, grown.after, grown.restarts) == (3, 5, True)
    assert grown.left_behind == []
    assert _env(kube_client, namespace)["BERTH_REPLICAS"] == "5"
    assert grown.state is not None and grown.state.ready_replicas == 5
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(5))
    bound = {c.name for c in grown.state.claims if c.phase == "Bound"}
    assert bound == expected_claims("ml-training", range(5))

    result = berth("scale", "ml-training", "2", "-n", namespace, "--wait", "--timeout", "120", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "scaled ml-training from 5 to 2 replicas" in result.stdout
    assert "every pod restarts and resumes from its latest checkpoint" in result.stdout
    assert "claims left behind (whenScaled: Retain" in result.stdout
    for claim in sorted(expected_claims("ml-training", range(2, 5))):
        assert claim in result.stdout
    assert _env(kube_client, namespace)["BERTH_REPLICAS"] == "2"
    # Retain: all five ordinals' claims still exist; the last three are flagged as orphans.
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(5))
    status = json.loads(berth("status", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert {c["name"] for c in status["claims"] if c["orphaned"]} == expected_claims("ml-training", range(2, 5))
    assert len(status["pods"]) == 2 and status["rollout"] == "complete"
    text = berth("status", "ml-training", "-n", namespace, kubeconfig=kubeconfig).stdout
    assert "ml-training in" in text and "2/2 ready, rollout complete" in text
    assert text.count("ORPHANED") == 6 and "6 orphaned claim(s) from scale-down: `berth gc ml-training" in text

    same = berth("scale", "ml-training", "2", "-n", namespace, kubeconfig=kubeconfig)
    assert "already has 2 replicas: nothing changed" in same.stdout


def test_gc_deletes_exactly_the_orphans_and_refuses_mounted_and_protected(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.codecs import from_dict
    from lightkube.resources.core_v1 import PersistentVolumeClaim
    from lightkube.types import PatchType

    spec = write_spec(tmp_path, seed_like(namespace, replicas=4))
    kube = admin(kubeconfig, namespace)
    up(kube, load_spec(spec), timeout_s=120)
    scale(kube, "ml-training", namespace, 1, wait=True, timeout_s=120)
    # Ordinal 2's model claim: mounted by a debugging pod (Pod Security restricted-compliant).
    kube_client.create(
        from_dict(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "inspect", "namespace": namespace},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                    "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "model-storage-ml-training-2"}}],
                },
            }
        )
    )
    # Ordinal 3's dataset claim: protected.
    kube_client.patch(
        PersistentVolumeClaim,
        "dataset-storage-ml-training-3",
        {"metadata": {"annotations": {"berth.dev/protect": "true"}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    orphans = expected_claims("ml-training", range(1, 4))
    keep = {"model-storage-ml-training-2", "dataset-storage-ml-training-3"}

    dry = berth("gc", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dryRun"] is True
    assert {c["name"] for c in report["claims"] if c["delete"]} == orphans - keep
    reasons = {c["name"]: c["reason"] for c in report["claims"]}
    assert "mounted by inspect" in reasons["model-storage-ml-training-2"]
    assert "protect" in reasons["dataset-storage-ml-training-3"]
    assert "replica 0" in reasons["model-storage-ml-training-0"]
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(4))  # dry run deleted nothing

    text = berth("gc", "ml-training", "-n", namespace, kubeconfig=kubeconfig)
    assert "would delete dataset-storage-ml-training-1 (2Gi" in text.stdout and "rerun with --yes" in text.stdout

    _, verdicts = collect_garbage(kube, "ml-training", namespace, yes=True)
    assert {v.claim.name for v in verdicts if v.deleted} == orphans - keep
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(1)) | keep
    again = berth("gc", "ml-training", "-n", namespace, "--yes", kubeconfig=kubeconfig)
    assert again.returncode == 0 and "no orphaned claims" in again.stdout
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(1)) | keep


def test_when_scaled_delete_really_deletes(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, seed_like(namespace, when_scaled="Delete"))
    kube = admin(kubeconfig, namespace)
    up(kube, load_spec(spec), timeout_s=120)
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(3))
    result = scale(kube, "ml-training", namespace, 1, wait=True, timeout_s=120)
    assert result.when_scaled == "Delete" and result.left_behind == []
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(1))


def test_down_is_a_dry_run_keeps_volumes_and_deletes_them_only_when_asked(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Namespace, Service

    shared = {
        "dataset": {
            "claimName": "dataset",
            "mountPath": "/data",
            "size": "1Gi",
            "storageClass": "standard",
            "accessMode": "ReadWriteMany",
        }
    }
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2, sharedVolumes=shared))
    kube = admin(kubeconfig, namespace)
    up(kube, load_spec(spec), timeout_s=120)
    status = json.loads(berth("status", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert [(c["name"], c["phase"], c["protected"], sorted(c["mountedBy"])) for c in status["shared"]] == [
        ("dataset", "Bound", True, ["ml-training-0", "ml-training-1"])
    ]
    # A later spec without monitoring: its scrape ConfigMap stays behind, and down still finds it by label.
    later = write_spec(
        tmp_path, seed_like(namespace, replicas=2, sharedVolumes=shared, monitoring={"prometheus": False}), "later.yaml"
    )
    up(kube, load_spec(later), wait=False)
    plan = berth("plan", str(later), "--no-lint", kubeconfig=kubeconfig)
    assert f"? ConfigMap {namespace}/ml-training-prometheus-scrape: leftover — no longer in the spec" in plan.stdout
    assert "0 to change, 7 unchanged, 1 skipped, 1 leftover" in plan.stdout

    dry = berth("down", "ml-training", "-n", namespace, kubeconfig=kubeconfig)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert f"would delete StatefulSet {namespace}/ml-training" in dry.stdout
    assert f"keep Namespace {namespace}" in dry.stdout
    assert kube_client.get(StatefulSet, "ml-training", namespace=namespace)

    done = berth("down", "ml-training", "-n", namespace, "--yes", "-o", "json", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    removed = {(o["kind"], o["name"]) for o in json.loads(done.stdout)["objects"] if o["deleted"]}
    assert {
        ("StatefulSet", "ml-training"),
        ("Service", "tensorflow-training"),
        ("ServiceAccount", "ml-training"),
        ("PodDisruptionBudget", "ml-training-pdb"),
        ("NetworkPolicy", "ml-training-training"),
        ("ConfigMap", "ml-training-prometheus-scrape"),
    } == removed
    assert not list(kube_client.list(StatefulSet, namespace=namespace))
    assert not list(kube_client.list(Service, namespace=namespace))
    assert kube_client.get(Namespace, namespace)
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(2)) | {"dataset"}  # volumes kept

    # The StatefulSet is gone: every claim is now an orphan for gc, and down --delete-volumes finds them too.
    volumes = berth("down", "ml-training", "-n", namespace, "--delete-volumes", kubeconfig=kubeconfig)
    assert volumes.returncode == 0 and "would delete PersistentVolumeClaim" in volumes.stdout
    assert f"keep PersistentVolumeClaim {namespace}/dataset: protected" in volumes.stdout
    assert claim_names(kube, namespace) == expected_claims("ml-training", range(2)) | {"dataset"}
    gone = berth("down", "ml-training", "-n", namespace, "--delete-volumes", "--yes", kubeconfig=kubeconfig)
    assert gone.returncode == 0, gone.stderr
    assert claim_names(kube, namespace) == {"dataset"}  # berth.dev/protect wins over --delete-volumes
