"""berth resize: bigger sizes reach every claim and the StatefulSet; pods are never deleted; shrink refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


@pytest.fixture
def classes(kube_client: Any, namespace: str) -> Iterator[tuple[str, str]]:
    """Two host-path classes the sandbox's controller-manager provisions: one expandable, one not."""
    from lightkube.codecs import from_dict
    from lightkube.resources.storage_v1 import StorageClass

    names = (f"grow-{namespace}"[:60], f"fixed-{namespace}"[:60])
    for name, expand in zip(names, (True, False), strict=True):
        kube_client.create(
            from_dict(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": name},
                    "provisioner": "kubernetes.io/host-path",
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": "WaitForFirstConsumer",
                    "allowVolumeExpansion": expand,
                }
            )
        )
    yield names
    for name in names:
        kube_client.delete(StorageClass, name)


def _spec(namespace: str, grow: str, fixed: str, model: str, dataset: str) -> dict[str, Any]:
    return seed_like(
        namespace,
        replicas=2,
        storageClasses={grow: {"existing": True, "tier": "hot"}, fixed: {"existing": True, "tier": "warm"}},
        volumes={
            "model-storage": {"mountPath": "/mnt/models", "size": model, "storageClass": grow},
            "dataset-storage": {"mountPath": "/mnt/datasets", "size": dataset, "storageClass": fixed},
        },
    )


def _pods(kube_client: Any, namespace: str) -> dict[str, str]:
    from lightkube.resources.core_v1 import Pod

    return {
        p.metadata.name: p.metadata.uid
        for p in kube_client.list(Pod, namespace=namespace)
        if p.metadata.deletionTimestamp is None
    }


def test_resize_grows_claims_and_template_without_touching_pods(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any, classes: tuple[str, str]
) -> None:
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    grow, fixed = classes
    spec = write_spec(tmp_path, _spec(namespace, grow, fixed, "1Gi", "2Gi"))
    done = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    pods = _pods(kube_client, namespace)
    assert len(pods) == 2
    old_uid = kube_client.get(StatefulSet, "ml-training", namespace=namespace).metadata.uid

    nothing = berth("resize", str(spec), kubeconfig=kubeconfig)
    assert nothing.returncode == 0, nothing.stderr
    assert "nothing to resize" in nothing.stdout

    spec = write_spec(tmp_path, _spec(namespace, grow, fixed, "3Gi", "2Gi"))
    plan = berth("resize", str(spec), "-o", "json", kubeconfig=kubeconfig)
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["dryRun"] is True
    assert {c["name"] for c in planned["claims"]} == {f"model-storage-ml-training-{i}" for i in range(2)}
    assert planned["templates"] == [{"name": "model-storage", "before": "1Gi", "after": "3Gi"}]
    # Dry run: nothing written.
    for i in range(2):
        pvc = kube_client.get(PersistentVolumeClaim, f"model-storage-ml-training-{i}", namespace=namespace)
        assert pvc.spec.resources.requests["storage"] == "1Gi"

    did = berth("resize", str(spec), "--yes", "-o", "json", kubeconfig=kubeconfig)
    assert did.returncode == 0, did.stderr
    result = json.loads(did.stdout)
    assert result["dryRun"] is False and result["statefulSetRecreated"] is True
    assert all(c["patched"] for c in result["claims"])
    assert "--cascade=orphan" in did.stderr  # progress on stderr
    for i in range(2):
        pvc = kube_client.get(PersistentVolumeClaim, f"model-storage-ml-training-{i}", namespace=namespace)
        assert pvc.spec.resources.requests["storage"] == "3Gi"
        other = kube_client.get(PersistentVolumeClaim, f"dataset-storage-ml-training-{i}", namespace=namespace)
        assert other.spec.resources.requests["storage"] == "2Gi"
    sts = kube_client.get(StatefulSet, "ml-training", namespace=namespace)
    assert sts.metadata.uid != old_uid  # recreated
    sizes = {t.metadata.name: t.spec.resources.requests["storage"] for t in sts.spec.volumeClaimTemplates}
    assert sizes == {"model-storage": "3Gi", "dataset-storage": "2Gi"}
    assert _pods(kube_client, namespace) == pods  # same pods, same UIDs: orphaned, never deleted
    # berth up now agrees with the cluster: nothing immutable left to change.
    again = berth("up", str(spec), "--timeout", "60", kubeconfig=kubeconfig)
    assert again.returncode == 0, again.stderr

    # Shrinking is refused, located on the spec's size field, before anything is written.
    small = write_spec(tmp_path, _spec(namespace, grow, fixed, "2Gi", "2Gi"))
    refused = berth("resize", str(small), "--yes", kubeconfig=kubeconfig)
    assert refused.returncode == 2, refused.stderr
    line = next(n for n, text in enumerate(small.read_text().splitlines(), 1) if "size: 2Gi" in text)
    assert f"{small}:{line}:" in refused.stderr
    assert "spec.volumes.model-storage.size: cannot shrink volume 'model-storage' from 3Gi to 2Gi" in refused.stderr
    assert "Traceback" not in refused.stderr

    # A class without allowVolumeExpansion: one clear error naming the class, nothing patched.
    bigger = write_spec(tmp_path, _spec(namespace, grow, fixed, "3Gi", "4Gi"))
    blocked = berth("resize", str(bigger), "--yes", kubeconfig=kubeconfig)
    assert blocked.returncode == 2, blocked.stderr
    assert f"StorageClass '{fixed}' does not allow volume expansion" in blocked.stderr
    assert "spec.volumes.dataset-storage.size" in blocked.stderr
    pvc = kube_client.get(PersistentVolumeClaim, "dataset-storage-ml-training-0", namespace=namespace)
    assert pvc.spec.resources.requests["storage"] == "2Gi"
    assert _pods(kube_client, namespace) == pods
