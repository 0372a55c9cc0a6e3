"""Storage: StorageClasses from provider presets (berth.providers.presets), shared dataset claims, static NFS volumes.

Defaults are the ones a training cluster needs: ``WaitForFirstConsumer`` so a zonal
disk is created in the zone the pod was scheduled to (the guide's "zone mismatch"),
expansion allowed, and ``Retain`` on hot tiers so a deleted claim never takes the
only copy of a checkpoint with it.
"""

from __future__ import annotations

from typing import Any

from berth.contract import ANNOTATION_PROTECT, ANNOTATION_TIER
from berth.providers.limits import Tier
from berth.providers.presets import PRESETS, Provider, class_parameters
from berth.render.labels import meta
from berth.spec.model import SharedVolumeSpec, TrainingCluster


def storage_classes(spec: TrainingCluster) -> list[dict[str, Any]]:
    """StorageClass objects for every class the spec declares and berth creates."""
    out = []
    for name, sc in spec.spec.storage_classes.items():
        if sc.existing:
            continue
        assert sc.provider is not None
        provisioner, params = class_parameters(sc)
        reclaim = sc.reclaim_policy or ("Retain" if sc.tier is Tier.HOT else "Delete")
        annotations = {ANNOTATION_TIER: sc.tier.value}
        if sc.default:
            annotations["storageclass.kubernetes.io/is-default-class"] = "true"
        obj: dict[str, Any] = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": meta(spec, name, "storage", namespaced=False, annotations=annotations),
            "provisioner": provisioner,
            "parameters": params,
            "reclaimPolicy": reclaim,
            "volumeBindingMode": sc.volume_binding_mode,
            "allowVolumeExpansion": sc.allow_volume_expansion and PRESETS[sc.provider].expandable,
        }
        if not params:
            del obj["parameters"]
        mount_options = sc.mount_options or (["nfsvers=4.1"] if sc.provider is Provider.NFS else [])
        if mount_options:
            obj["mountOptions"] = mount_options
        out.append(obj)
    return out


def _nfs_pv_name(spec: TrainingCluster, claim: str) -> str:
    return f"{spec.namespace}-{claim}"[:253]


def shared_claims(spec: TrainingCluster) -> list[dict[str, Any]]:
    """PVCs (and static NFS PVs) for shared volumes berth creates."""
    out: list[dict[str, Any]] = []
    for sv in spec.spec.shared_volumes.values():
        if sv.existing:
            continue
        assert sv.size is not None
        if sv.nfs is not None:
            out.append(_nfs_volume(spec, sv))
        claim: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(spec, sv.claim_name, "storage", annotations={ANNOTATION_PROTECT: "true"}),
            "spec": {"accessModes": [sv.access_mode], "resources": {"requests": {"storage": sv.size}}},
        }
        if sv.nfs is not None:
            claim["spec"]["storageClassName"] = ""
            claim["spec"]["volumeName"] = _nfs_pv_name(spec, sv.claim_name)
        elif sv.storage_class:
            claim["spec"]["storageClassName"] = sv.storage_class
        out.append(claim)
    return out


def _nfs_volume(spec: TrainingCluster, sv: SharedVolumeSpec) -> dict[str, Any]:
    assert sv.nfs is not None and sv.size is not None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta(spec, _nfs_pv_name(spec, sv.claim_name), "storage", namespaced=False),
        "spec": {
            "capacity": {"storage": sv.size},
            "accessModes": [sv.access_mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "mountOptions": ["nfsvers=4.1"],
            "nfs": {"server": sv.nfs.server, "path": sv.nfs.path, "readOnly": shared_read_only(sv)},
            "claimRef": {"namespace": spec.namespace, "name": sv.claim_name},
        },
    }


def shared_read_only(sv: SharedVolumeSpec) -> bool:
    """Mount read-only unless asked otherwise; always for ReadOnlyMany."""
    return sv.read_only if sv.read_only is not None else sv.access_mode == "ReadOnlyMany"
