"""berth doctor against the real control plane: the scheduler's and binder's own words become findings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


def _doctor(name: str, namespace: str, kubeconfig: Path) -> tuple[int, list[dict[str, str]]]:
    out = berth("doctor", name, "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout)["findings"]


def _until(name: str, namespace: str, kubeconfig: Path, code: str, timeout: float = 60) -> list[dict[str, str]]:
    """Poll the doctor until a finding with ``code`` appears (the scheduler acts asynchronously)."""
    deadline = time.monotonic() + timeout
    findings: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        _, findings = _doctor(name, namespace, kubeconfig)
        if any(f["code"] == code for f in findings):
            return findings
        time.sleep(1)
    raise AssertionError(f"no {code} finding within {timeout}s: {findings}")


def _up(tmp_path: Path, kubeconfig: Path, doc: dict[str, Any]) -> None:
    out = berth("up", str(write_spec(tmp_path, doc)), "--no-wait", kubeconfig=kubeconfig)
    assert out.returncode == 0, out.stderr


def test_healthy_cluster_has_no_findings_and_exits_zero(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    out = berth(
        "up", str(write_spec(tmp_path, seed_like(namespace, replicas=2))), "--timeout", "120", kubeconfig=kubeconfig
    )
    assert out.returncode == 0, out.stderr
    code, findings = _doctor("ml-training", namespace, kubeconfig)
    assert code == 0
    assert [f for f in findings if f["severity"] != "info"] == []
    text = berth("doctor", "ml-training", "-n", namespace, kubeconfig=kubeconfig)
    assert text.returncode == 0 and "no problems found" in text.stdout


def test_too_many_gpus_per_pod_is_reported_with_the_clusters_capacity(
    kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    gpus = {
        "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 64},
        "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 64},
    }
    _up(tmp_path, kubeconfig, seed_like(namespace, replicas=2, resources=gpus))
    findings = _until("ml-training", namespace, kubeconfig, "insufficient-gpu")
    gpu = [f for f in findings if f["code"] == "insufficient-gpu"]
    assert {f["object"] for f in gpu} <= {"pod/ml-training-0", "pod/ml-training-1"}
    assert gpu[0]["severity"] == "error"
    assert "Insufficient nvidia.com/gpu" in gpu[0]["evidence"]
    assert "each pod requests 64" in gpu[0]["evidence"]
    # The sandbox's three nodes have 8 GPUs each: the doctor reports what the cluster has.
    assert "cluster allocatable: 24 GPUs" in gpu[0]["evidence"]
    code, _ = _doctor("ml-training", namespace, kubeconfig)
    assert code == 1


def test_missing_storage_class_is_named(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    doc = seed_like(
        namespace,
        replicas=1,
        storageClasses={"standard": {"existing": True}, "fast-ssd": {"existing": True, "tier": "hot"}},
        volumes={"model-storage": {"mountPath": "/mnt/models", "size": "1Gi", "storageClass": "fast-ssd"}},
    )
    _up(tmp_path, kubeconfig, doc)
    findings = _until("ml-training", namespace, kubeconfig, "storage-class-missing")
    missing = next(f for f in findings if f["code"] == "storage-class-missing")
    assert missing["object"] == "pvc/model-storage-ml-training-0"
    assert "StorageClass fast-ssd does not exist" in missing["problem"]


def test_volume_in_a_zone_without_nodes_is_a_zone_mismatch(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.resources.core_v1 import PersistentVolume

    # A disk that already lives in zone-z (e.g. created before the node pool moved), pre-bound to
    # the claim the StatefulSet will create for ordinal 0: what a zonal disk looks like to Kubernetes.
    pv_name = f"zonal-{namespace}"
    pv = PersistentVolume.from_dict(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "standard",
                "hostPath": {"path": f"/tmp/{pv_name}"},
                "claimRef": {"namespace": namespace, "name": "model-storage-ml-training-0"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-z"]}
                                ]
                            }
                        ]
                    }
                },
            },
        }
    )
    kube_client.create(pv)
    try:
        doc = seed_like(
            namespace,
            replicas=1,
            volumes={"model-storage": {"mountPath": "/mnt/models", "size": "1Gi", "storageClass": "standard"}},
        )
        _up(tmp_path, kubeconfig, doc)
        findings = _until("ml-training", namespace, kubeconfig, "zone-mismatch", timeout=90)
        zone = next(f for f in findings if f["code"] == "zone-mismatch")
        assert zone["object"] == "pod/ml-training-0"
        assert "volume zones: zone-z" in zone["evidence"]
        assert "zone-a" in zone["evidence"] and "zone-b" in zone["evidence"]
    finally:
        kube_client.delete(PersistentVolume, pv_name)


def test_multi_attach_event_and_orphans_after_scale_down(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.resources.core_v1 import Event

    out = berth(
        "up", str(write_spec(tmp_path, seed_like(namespace, replicas=2))), "--timeout", "120", kubeconfig=kubeconfig
    )
    assert out.returncode == 0, out.stderr
    # The sandbox's kwok nodes attach nothing, so we post the event the attach/detach controller sends
    # for a ReadWriteOnce disk still attached elsewhere (its exact wording), as that controller would.
    kube_client.create(
        Event.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "ml-training-1.multiattach", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": "ml-training-1", "namespace": namespace},
                "reason": "FailedAttachVolume",
                "type": "Warning",
                "message": 'Multi-Attach error for volume "pvc-123" Volume is already exclusively attached to one '
                "node and can't be attached to another",
                "source": {"component": "attachdetach-controller"},
            }
        )
    )
    findings = _until("ml-training", namespace, kubeconfig, "multi-attach")
    attach = next(f for f in findings if f["code"] == "multi-attach")
    assert attach["object"] == "pod/ml-training-1" and "ReadOnlyMany" in attach["fix"]

    scaled = berth("scale", "ml-training", "1", "-n", namespace, "--wait", kubeconfig=kubeconfig)
    assert scaled.returncode == 0, scaled.stderr
    findings = _until("ml-training", namespace, kubeconfig, "orphaned-claim")
    orphans = sorted(f["object"] for f in findings if f["code"] == "orphaned-claim")
    assert orphans == ["pvc/dataset-storage-ml-training-1", "pvc/model-storage-ml-training-1"]
