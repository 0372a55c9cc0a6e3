"""Backup: a Velero Schedule with CSI snapshots, and the VolumeSnapshotClass Velero picks."""

from __future__ import annotations

from typing import Any

from berth.contract import LABEL_INSTANCE
from berth.providers.limits import Tier
from berth.providers.presets import class_parameters
from berth.render.labels import meta
from berth.spec.model import TrainingCluster


def snapshot_driver(spec: TrainingCluster) -> str | None:
    """CSI driver whose volumes are snapshotted: the spec's, else the hot class's provisioner."""
    assert spec.spec.backup is not None
    if spec.spec.backup.snapshot_driver:
        return spec.spec.backup.snapshot_driver
    classes = spec.spec.storage_classes
    created = [sc for sc in classes.values() if not sc.existing and sc.provider is not None]
    created.sort(key=lambda sc: sc.tier is not Tier.HOT)
    return class_parameters(created[0])[0] if created else None


def backup(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Schedule (cron, ttl, this namespace, this cluster's labels) and its VolumeSnapshotClass."""
    b = spec.spec.backup
    if b is None:
        return []
    out: list[dict[str, Any]] = []
    driver = snapshot_driver(spec)
    if b.snapshot_volumes and driver:
        md = meta(
            spec,
            f"{spec.name}-snapshots",
            "backup",
            namespaced=False,
            extra_labels={"velero.io/csi-volumesnapshot-class": "true"},
        )
        out.append(
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": md,
                "driver": driver,
                "deletionPolicy": "Retain",
            }
        )
    template: dict[str, Any] = {
        "includedNamespaces": [spec.namespace],
        "labelSelector": {"matchLabels": {LABEL_INSTANCE: spec.name}},
        "snapshotVolumes": b.snapshot_volumes,
        "ttl": b.ttl,
    }
    if b.storage_location:
        template["storageLocation"] = b.storage_location
    md = meta(spec, f"{spec.namespace}-{spec.name}-backup", "backup")
    md["namespace"] = b.velero_namespace
    out.append(
        {
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "metadata": md,
            "spec": {"schedule": b.schedule, "useOwnerReferencesInBackup": False, "template": template},
        }
    )
    return out
