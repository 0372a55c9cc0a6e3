"""The Velero requests berth builds: a Backup selects what the cluster's Schedule selects; a Restore maps namespaces."""

from __future__ import annotations

from berth.render import render_all
from berth.render.backup import backup_request, backup_spec, restore_request, snapshot_class_annotations
from berth.spec.load import spec_from_data


def _spec(namespace: str, name: str, driver: str | None) -> dict[str, object]:
    backup: dict[str, object] = {"schedule": "0 2 * * *", "ttl": "48h"}
    if driver:
        backup["snapshotDriver"] = driver
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "busybox:1.36",
            "replicas": 2,
            "storageClasses": {"standard": {"existing": True, "tier": "hot"}},
            "volumes": {"model": {"mountPath": "/m", "size": "1Gi", "storageClass": "standard"}},
            "backup": backup,
        },
    }


def test_a_backup_by_hand_selects_what_the_schedule_selects() -> None:
    spec = spec_from_data(_spec("team-a", "lm", "ebs.csi.aws.com"))
    schedule = next(o for o in render_all(spec) if o["kind"] == "Schedule")
    by_hand = backup_request(
        "lm",
        "velero",
        "team-a-lm-20261201000000",
        backup_spec("lm", "team-a", ttl="48h", snapshot_volumes=True, storage_location=None),
        snapshot_class_annotations(spec),
    )
    assert by_hand["spec"] == schedule["spec"]["template"]
    assert by_hand["metadata"]["annotations"] == {"velero.io/csi-volumesnapshot-class_ebs.csi.aws.com": "lm-snapshots"}
    assert by_hand["metadata"]["labels"]["app.kubernetes.io/instance"] == "lm"
    assert by_hand["metadata"]["namespace"] == "velero"


def test_two_clusters_on_one_driver_make_no_second_default_class() -> None:
    """Velero refuses to choose between two classes labelled as a driver's default; berth labels none."""
    classes = []
    for ns in ("team-a", "team-b"):
        spec = spec_from_data(_spec(ns, f"lm-{ns}", "ebs.csi.aws.com"))
        classes += [o for o in render_all(spec) if o["kind"] == "VolumeSnapshotClass"]
    assert len(classes) == 2 and {c["driver"] for c in classes} == {"ebs.csi.aws.com"}
    assert not [c for c in classes if "velero.io/csi-volumesnapshot-class" in c["metadata"]["labels"]]
    # No snapshots, no driver: no class and no annotation.
    plain = spec_from_data(_spec("team-a", "lm", None))
    assert snapshot_class_annotations(plain) == {}
    assert not [o for o in render_all(plain) if o["kind"] == "VolumeSnapshotClass"]


def test_restore_maps_the_namespace_only_when_it_changes() -> None:
    same = restore_request("lm", "velero", "r1", "b1", "team-a", "team-a")
    assert same["spec"] == {
        "backupName": "b1",
        "includedNamespaces": ["team-a"],
        "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "lm"}},
        "restorePVs": True,
    }
    moved = restore_request("lm", "velero", "r2", "b1", "team-a", "team-b")
    assert moved["spec"]["namespaceMapping"] == {"team-a": "team-b"}
    assert moved["apiVersion"] == "velero.io/v1" and moved["metadata"]["namespace"] == "velero"
