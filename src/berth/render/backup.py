"""Backup: a Velero Schedule with CSI snapshots, the VolumeSnapshotClass Velero picks, and the
one-off ``Backup``/``Restore`` requests of ``berth backup`` and ``berth restore``.

Every object follows Velero's published ``velero.io/v1`` API (``pkg/apis/velero/v1``): a Schedule's
``template`` and a Backup's ``spec`` are the same ``BackupSpec``, built once here, so a backup taken
by hand selects exactly what the nightly one does.
"""

from __future__ import annotations

import copy
from typing import Any

from berth.contract import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, PART_OF
from berth.providers.limits import Tier
from berth.providers.presets import class_parameters
from berth.render.labels import meta
from berth.render.workload import CONTAINER_SECURITY, s3_env
from berth.spec.model import TrainingCluster

VELERO_API_VERSION = "velero.io/v1"
SEED_CONTAINER = "seed-checkpoints"
# berth seed checks each 16 MiB chunk and downloads with a few 4 MiB buffers per thread; boto3 the rest.
SEED_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
BACKUP_COMPONENT = "backup"
# Velero picks the VolumeSnapshotClass of a driver from this per-backup (or per-Schedule) annotation.
SNAPSHOT_CLASS_ANNOTATION = "velero.io/csi-volumesnapshot-class_"


def backup_spec(
    name: str, namespace: str, *, ttl: str, snapshot_volumes: bool, storage_location: str | None
) -> dict[str, Any]:
    """Velero's ``BackupSpec`` for one training cluster: its namespace, its labels, its volumes.

    The label selector is the ``app.kubernetes.io/instance`` label every object berth renders
    carries (claim templates too, so the controller's per-replica claims have it); Velero adds
    each selected claim's PersistentVolume itself.
    """
    out: dict[str, Any] = {
        "includedNamespaces": [namespace],
        "labelSelector": {"matchLabels": {LABEL_INSTANCE: name}},
        "snapshotVolumes": snapshot_volumes,
        "ttl": ttl,
    }
    if storage_location:
        out["storageLocation"] = storage_location
    return out


def request_labels(name: str) -> dict[str, str]:
    """Labels of a Backup/Restore berth creates: ``berth backups NAME`` lists by the instance label."""
    return {
        LABEL_INSTANCE: name,
        LABEL_COMPONENT: BACKUP_COMPONENT,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def backup_request(
    name: str, velero_namespace: str, backup_name: str, spec: dict[str, Any], annotations: dict[str, str]
) -> dict[str, Any]:
    """A ``velero.io/v1`` Backup in Velero's namespace (Velero's server only watches its own)."""
    md: dict[str, Any] = {"name": backup_name, "namespace": velero_namespace, "labels": request_labels(name)}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": VELERO_API_VERSION, "kind": "Backup", "metadata": md, "spec": spec}


def restore_request(
    name: str, velero_namespace: str, restore_name: str, backup_name: str, source: str, target: str
) -> dict[str, Any]:
    """A ``velero.io/v1`` Restore of one cluster's objects and volumes from ``backup_name``.

    ``restorePVs`` brings the volumes back from their snapshots; ``namespaceMapping`` moves the
    cluster when the target namespace differs from the one it was backed up from. Velero's
    default ``existingResourcePolicy`` (none) never overwrites an existing object, which is why
    ``berth restore`` refuses a namespace still holding the cluster's claims.
    """
    spec: dict[str, Any] = {
        "backupName": backup_name,
        "includedNamespaces": [source],
        "labelSelector": {"matchLabels": {LABEL_INSTANCE: name}},
        "restorePVs": True,
    }
    if target != source:
        spec["namespaceMapping"] = {source: target}
    return {
        "apiVersion": VELERO_API_VERSION,
        "kind": "Restore",
        "metadata": {"name": restore_name, "namespace": velero_namespace, "labels": request_labels(name)},
        "spec": spec,
    }


def snapshot_driver(spec: TrainingCluster) -> str | None:
    """CSI driver whose volumes are snapshotted: the spec's, else the hot class's provisioner."""
    assert spec.spec.backup is not None
    if spec.spec.backup.snapshot_driver:
        return spec.spec.backup.snapshot_driver
    classes = spec.spec.storage_classes
    created = [sc for sc in classes.values() if not sc.existing and sc.provider is not None]
    created.sort(key=lambda sc: sc.tier is not Tier.HOT)
    return class_parameters(created[0])[0] if created else None


def snapshot_class_annotations(spec: TrainingCluster) -> dict[str, str]:
    """``velero.io/csi-volumesnapshot-class_<driver>: <class>`` naming this cluster's VolumeSnapshotClass.

    Velero (1.12+) takes a backup's (or its Schedule's) annotation before the cluster-wide default,
    the one class per driver labelled ``velero.io/csi-volumesnapshot-class: "true"``. berth never sets
    that label: two clusters sharing a driver would make two defaults, and Velero refuses to choose.
    Empty when nothing is snapshotted.
    """
    b, driver = spec.spec.backup, None
    if b is not None and b.snapshot_volumes:
        driver = snapshot_driver(spec)
    return {SNAPSHOT_CLASS_ANNOTATION + driver: snapshot_class_name(spec)} if driver else {}


def snapshot_class_name(spec: TrainingCluster) -> str:
    """``<name>-snapshots``; cluster-scoped, so same-named clusters share it (``kube/preflight`` checks that)."""
    return f"{spec.name}-snapshots"


def backup(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Schedule (cron, ttl, this namespace, this cluster's labels) and its VolumeSnapshotClass."""
    b = spec.spec.backup
    if b is None:
        return []
    out: list[dict[str, Any]] = []
    driver = snapshot_driver(spec)
    annotations = snapshot_class_annotations(spec)
    if annotations and driver:
        out.append(
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": meta(spec, snapshot_class_name(spec), "backup", namespaced=False),
                "driver": driver,
                "deletionPolicy": "Retain",
            }
        )
    template = backup_spec(
        spec.name,
        spec.namespace,
        ttl=b.ttl,
        snapshot_volumes=b.snapshot_volumes,
        storage_location=b.storage_location,
    )
    md = meta(spec, f"{spec.namespace}-{spec.name}-backup", "backup", annotations=annotations)
    md["namespace"] = b.velero_namespace
    out.append(
        {
            "apiVersion": VELERO_API_VERSION,
            "kind": "Schedule",
            "metadata": md,
            "spec": {"schedule": b.schedule, "useOwnerReferencesInBackup": False, "template": template},
        }
    )
    return out


def checkpoint_mount(spec: TrainingCluster) -> tuple[str, str, str] | None:
    """(volume, its mount path, checkpoint directory) of the per-replica volume holding checkpoints."""
    directory = spec.checkpoint_dir()
    if directory is None:
        return None
    for name, vol in spec.spec.volumes.items():
        if directory == vol.mount_path or directory.startswith(vol.mount_path.rstrip("/") + "/"):
            return name, vol.mount_path, directory
    return None


def seed_init_container(spec: TrainingCluster, url: str) -> dict[str, Any]:
    """The init container ``berth restore --from-archive`` adds: ``berth seed`` of this pod's rank.

    It runs before every other init container and the trainer, in the trainer's image (berth
    installed), with the archive's credentials exactly as the trainer gets them (``s3_env``: keys
    from ``spec.archive.secretName``, or none so boto3 uses the pod's cloud identity). Its report
    is the termination message. Callers check that the spec has an archive and a checkpoint volume.
    """
    archive, mount = spec.spec.archive, checkpoint_mount(spec)
    assert archive is not None and mount is not None
    volume, mount_path, directory = mount
    command = ["berth", "seed", directory, "--from", url, "--rank", "$(POD_INDEX)"]
    command += ["--world", str(spec.spec.replicas), "--report", "/dev/termination-log"]
    env: list[dict[str, Any]] = [
        {
            "name": "POD_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
        }
    ]
    env += s3_env(archive.secret_name, archive.endpoint, archive.region)
    container: dict[str, Any] = {"name": SEED_CONTAINER, "image": spec.spec.image}
    if spec.spec.image_pull_policy:
        container["imagePullPolicy"] = spec.spec.image_pull_policy
    container.update(
        {
            "command": command,
            "env": env,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": copy.deepcopy(SEED_RESOURCES),
            "securityContext": copy.deepcopy(CONTAINER_SECURITY),
            "volumeMounts": [{"name": volume, "mountPath": mount_path}],
        }
    )
    return container


def with_seed(objects: list[dict[str, Any]], spec: TrainingCluster, url: str) -> dict[str, Any]:
    """Put the seed init container first in the StatefulSet of ``objects``; returns that container."""
    container = seed_init_container(spec, url)
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            pod = obj["spec"]["template"]["spec"]
            pod["initContainers"] = [container, *pod.get("initContainers", [])]
    return container
