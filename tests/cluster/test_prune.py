"""berth up --prune: what an older spec created and the new one drops is deleted; volumes never are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


def _names(kube_client: Any, model: Any, namespace: str) -> set[str]:
    return {
        o.metadata.name for o in kube_client.list(model, namespace=namespace) if o.metadata.deletionTimestamp is None
    }


def test_prune_deletes_dropped_objects_but_never_claims(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim
    from lightkube.resources.networking_v1 import NetworkPolicy

    shared = {
        "data": {
            "claimName": "dataset",
            "mountPath": "/data",
            "size": "1Gi",
            "storageClass": "standard",
            "accessMode": "ReadWriteMany",
        }
    }
    first = write_spec(tmp_path, seed_like(namespace, replicas=1, sharedVolumes=shared), "v1.yaml")
    assert berth("up", str(first), "--timeout", "120", kubeconfig=kubeconfig).returncode == 0
    assert "ml-training-prometheus-scrape" in _names(kube_client, ConfigMap, namespace)
    assert "ml-training-training" in _names(kube_client, NetworkPolicy, namespace)
    claims_before = _names(kube_client, PersistentVolumeClaim, namespace)
    assert "dataset" in claims_before

    # v2 drops monitoring, the network policy and the shared dataset.
    second = write_spec(
        tmp_path,
        seed_like(namespace, replicas=1, monitoring={"prometheus": False, "alerts": False}, networkPolicy=False),
        "v2.yaml",
    )
    kept = berth("up", str(second), "--timeout", "120", kubeconfig=kubeconfig)
    assert kept.returncode == 0, kept.stderr
    plan = berth("plan", str(second), "-o", "json", kubeconfig=kubeconfig)
    assert {(o["kind"], o["action"]) for o in json.loads(plan.stdout)["objects"]} >= {
        ("ConfigMap", "leftover"),
        ("NetworkPolicy", "leftover"),
        ("PersistentVolumeClaim", "leftover"),
    }
    assert "ml-training-prometheus-scrape" in _names(kube_client, ConfigMap, namespace)  # no --prune: untouched

    pruned = berth("up", str(second), "--prune", "--timeout", "120", kubeconfig=kubeconfig)
    assert pruned.returncode == 0, pruned.stderr
    assert "- ConfigMap" in pruned.stdout and "deleted" in pruned.stdout
    assert "ml-training-prometheus-scrape" not in _names(kube_client, ConfigMap, namespace)
    assert "ml-training-training" not in _names(kube_client, NetworkPolicy, namespace)
    # Data is never pruned: the dropped shared claim and every per-replica claim are still there.
    assert _names(kube_client, PersistentVolumeClaim, namespace) == claims_before
    again = berth("up", str(second), "--prune", "-o", "json", "--timeout", "60", kubeconfig=kubeconfig)
    assert not json.loads(again.stdout)["changed"]
