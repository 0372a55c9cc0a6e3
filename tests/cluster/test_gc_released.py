"""berth gc and Released volumes: a Retain class keeps the disk after gc deletes its claim; gc finds and deletes it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


@pytest.fixture
def retain_class(kube_client: Any, namespace: str) -> Iterator[str]:
    from lightkube.codecs import from_dict
    from lightkube.resources.storage_v1 import StorageClass

    name = f"keep-{namespace}"[:60]
    kube_client.create(
        from_dict(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": "kubernetes.io/host-path",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )
    )
    yield name
    kube_client.delete(StorageClass, name)


def _volumes(kube_client: Any, namespace: str) -> dict[str, Any]:
    """PVs bound (or once bound) to claims of ``namespace``, by claim name."""
    from lightkube.resources.core_v1 import PersistentVolume

    return {
        pv.spec.claimRef.name: pv
        for pv in kube_client.list(PersistentVolume)
        if pv.spec.claimRef is not None and pv.spec.claimRef.namespace == namespace
    }


def test_gc_deletes_released_volumes_only_when_asked(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any, retain_class: str
) -> None:
    from lightkube.resources.core_v1 import PersistentVolume
    from lightkube.types import PatchType

    spec = seed_like(
        namespace,
        replicas=2,
        storageClasses={retain_class: {"existing": True, "tier": "hot"}},
        volumes={
            "model-storage": {"mountPath": "/mnt/models", "size": "1Gi", "storageClass": retain_class},
            "dataset-storage": {"mountPath": "/mnt/datasets", "size": "2Gi", "storageClass": retain_class},
        },
    )
    path = write_spec(tmp_path, spec)
    assert berth("up", str(path), "--timeout", "120", kubeconfig=kubeconfig).returncode == 0
    scaled = berth("scale", "ml-training", "1", "-n", namespace, "--wait", "--timeout", "120", kubeconfig=kubeconfig)
    assert scaled.returncode == 0, scaled.stderr
    volumes = _volumes(kube_client, namespace)
    assert len(volumes) == 4

    # Nothing released yet: gc lists no volume (bound ones are never its business).
    first = json.loads(berth("gc", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert first["releasedVolumes"] == []
    deleted = berth("gc", "ml-training", "-n", namespace, "--yes", kubeconfig=kubeconfig)
    assert deleted.returncode == 0, deleted.stderr
    gone = {"model-storage-ml-training-1", "dataset-storage-ml-training-1"}
    deadline = time.monotonic() + 60
    while {c for c, pv in _volumes(kube_client, namespace).items() if pv.status.phase == "Released"} != gone:
        assert time.monotonic() < deadline, {c: pv.status.phase for c, pv in _volumes(kube_client, namespace).items()}
        time.sleep(0.5)

    # One released disk is protected: the policy keeps it whatever the flags.
    protected = volumes["dataset-storage-ml-training-1"].metadata.name
    kube_client.patch(
        PersistentVolume,
        protected,
        {"metadata": {"annotations": {"berth.dev/protect": "true"}}},
        patch_type=PatchType.MERGE,
    )
    listed = berth("gc", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    report = json.loads(listed.stdout)
    assert {v["claim"] for v in report["releasedVolumes"]} == {f"{namespace}/{c}" for c in gone}
    assert not any(v["delete"] for v in report["releasedVolumes"])
    assert all(
        "--delete-released-volumes" in v["reason"] or "protect" in v["reason"] for v in report["releasedVolumes"]
    )
    text = berth("gc", "ml-training", "-n", namespace, kubeconfig=kubeconfig).stdout
    assert "released volumes" in text and "1Gi" in text

    dry = berth("gc", "ml-training", "-n", namespace, "--delete-released-volumes", "-o", "json", kubeconfig=kubeconfig)
    planned = {v["claim"].split("/")[1]: v for v in json.loads(dry.stdout)["releasedVolumes"]}
    assert planned["model-storage-ml-training-1"]["delete"] is True
    assert planned["dataset-storage-ml-training-1"]["delete"] is False
    assert "protect" in planned["dataset-storage-ml-training-1"]["reason"]
    assert len(_volumes(kube_client, namespace)) == 4  # dry run: nothing deleted

    did = berth(
        "gc", "ml-training", "-n", namespace, "--delete-released-volumes", "--yes", "-o", "json", kubeconfig=kubeconfig
    )
    assert did.returncode == 0, did.stderr
    done = {v["name"] for v in json.loads(did.stdout)["releasedVolumes"] if v["deleted"]}
    assert done == {volumes["model-storage-ml-training-1"].metadata.name}
    left = _volumes(kube_client, namespace)
    assert set(left) == {
        "model-storage-ml-training-0",
        "dataset-storage-ml-training-0",
        "dataset-storage-ml-training-1",
    }
    assert all(
        left[c].status.phase == "Bound" for c in ("model-storage-ml-training-0", "dataset-storage-ml-training-0")
    )
    # Clean up the disks this test made a Retain class keep (the namespace's deletion would not).
    kube_client.delete(PersistentVolume, protected)
