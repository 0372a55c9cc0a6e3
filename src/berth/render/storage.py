"""Storage: StorageClasses from provider presets, shared dataset claims, static NFS volumes.

Defaults are the ones a training cluster needs: ``WaitForFirstConsumer`` so a zonal
disk is created in the zone the pod was scheduled to (the guide's "zone mismatch"),
expansion allowed, and ``Retain`` on hot tiers so a deleted claim never takes the
only copy of a checkpoint with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from berth.render.labels import meta
from berth.spec.model import Provider, SharedVolumeSpec, StorageClassSpec, Tier, TrainingCluster


@dataclass(frozen=True)
class Preset:
    """A provider's CSI driver, its disk types, and which spec fields it takes."""

    provisioner: str
    types: tuple[str, ...]
    default_type: str | None
    fields: frozenset[str]
    expandable: bool = True


# Provisioner names and parameter keys from each driver's StorageClass documentation:
# aws-ebs-csi-driver docs/parameters.md, GKE "Persistent volumes: pd.csi.storage.gke.io" and Hyperdisk docs,
# azuredisk-csi-driver docs/driver-parameters.md, csi-driver-nfs docs/driver-parameters.md,
# ceph-csi docs (rbd, cephfs), rancher/local-path-provisioner README.
PRESETS: dict[Provider, Preset] = {
    Provider.AWS_EBS: Preset("ebs.csi.aws.com", ("gp3", "gp2", "io2", "io1", "st1", "sc1", "standard"), "gp3",
                             frozenset({"type", "iops", "throughput", "iops_per_gb", "encrypted", "kms_key_id",
                                        "fs_type"})),
    Provider.GCP_PD: Preset("pd.csi.storage.gke.io",
                            ("pd-ssd", "pd-balanced", "pd-standard", "pd-extreme", "hyperdisk-balanced",
                             "hyperdisk-throughput", "hyperdisk-extreme", "hyperdisk-ml"), "pd-balanced",
                            frozenset({"type", "iops", "throughput", "kms_key_id", "fs_type"})),
    Provider.AZURE_DISK: Preset("disk.csi.azure.com",
                                ("Premium_LRS", "PremiumV2_LRS", "UltraSSD_LRS", "StandardSSD_LRS", "Standard_LRS",
                                 "Premium_ZRS", "StandardSSD_ZRS"), "Premium_LRS",
                                frozenset({"type", "iops", "throughput", "kms_key_id", "fs_type"})),
    Provider.NFS: Preset("nfs.csi.k8s.io", (), None, frozenset({"server", "share"})),
    Provider.CEPH_RBD: Preset("rbd.csi.ceph.com", (), None, frozenset({"cluster_id", "pool", "fs_type"})),
    Provider.CEPHFS: Preset("cephfs.csi.ceph.com", (), None, frozenset({"cluster_id", "fs_name"})),
    Provider.LOCAL: Preset("rancher.io/local-path", (), None, frozenset(), expandable=False),
    Provider.CSI: Preset("", (), None, frozenset({"provisioner", "fs_type"})),
}

_REQUIRED: dict[Provider, tuple[str, ...]] = {
    Provider.NFS: ("server", "share"),
    Provider.CEPH_RBD: ("cluster_id", "pool"),
    Provider.CEPHFS: ("cluster_id", "fs_name"),
    Provider.CSI: ("provisioner",),
}
_PRESET_FIELDS = ("type", "iops", "throughput", "iops_per_gb", "encrypted", "kms_key_id", "fs_type", "server",
                  "share", "cluster_id", "pool", "fs_name", "provisioner")
_ULTRA = ("PremiumV2_LRS", "UltraSSD_LRS")


def _alias(field: str) -> str:
    return StorageClassSpec.model_fields[field].alias or field


def preset_issues(sc: StorageClassSpec) -> Iterator[tuple[str | None, str, str]]:
    """(field, message, hint) for settings the provider does not take, lacks, or limits."""
    assert sc.provider is not None
    preset = PRESETS[sc.provider]
    for field in _PRESET_FIELDS:
        if getattr(sc, field) is not None and field not in preset.fields:
            yield (_alias(field), f"provider {sc.provider.value} does not take {_alias(field)}",
                   f"{sc.provider.value} takes: {', '.join(sorted(_alias(f) for f in preset.fields)) or 'nothing'};"
                   " pass other driver settings in parameters")
    for field in _REQUIRED.get(sc.provider, ()):
        if getattr(sc, field) is None:
            yield (_alias(field), f"provider {sc.provider.value} needs {_alias(field)}",
                   f"add {_alias(field)}: …")
    if sc.type is not None and preset.types and sc.type not in preset.types:
        yield ("type", f"{sc.type!r} is not a {sc.provider.value} disk type", f"one of {', '.join(preset.types)}")
        return
    if sc.provider is Provider.AZURE_DISK and (sc.iops or sc.throughput) and sc.type not in _ULTRA:
        yield ("iops" if sc.iops else "throughput",
               f"Azure sets IOPS and throughput only on {' and '.join(_ULTRA)} disks",
               "use type: PremiumV2_LRS, or remove iops/throughput")
    provisioner, params = class_parameters(sc)
    from berth import providers

    for message in providers.check_storage_class_params(provisioner, params):
        field = next((f for f in ("iopsPerGB", "throughput", "iops") if f in message), "type")
        yield (field, message, f"see {sc.provider.value}'s documented limits (berth/providers.py cites them)")


def class_parameters(sc: StorageClassSpec) -> tuple[str, dict[str, str]]:
    """Provisioner and ``parameters`` of a class berth creates."""
    assert sc.provider is not None
    preset = PRESETS[sc.provider]
    params: dict[str, str] = {}
    disk_type = sc.type or preset.default_type
    if sc.provider is Provider.AWS_EBS:
        params["type"] = str(disk_type)
        _put(params, "iops", sc.iops)
        _put(params, "throughput", sc.throughput)
        _put(params, "iopsPerGB", sc.iops_per_gb)
        params["encrypted"] = "false" if sc.encrypted is False else "true"
        _put(params, "kmsKeyId", sc.kms_key_id)
    elif sc.provider is Provider.GCP_PD:
        params["type"] = str(disk_type)
        _put(params, "provisioned-iops-on-create", sc.iops)
        _put(params, "provisioned-throughput-on-create", f"{sc.throughput}Mi" if sc.throughput else None)
        _put(params, "disk-encryption-kms-key", sc.kms_key_id)
    elif sc.provider is Provider.AZURE_DISK:
        params["skuName"] = str(disk_type)
        _put(params, "DiskIOPSReadWrite", sc.iops)
        _put(params, "DiskMBpsReadWrite", sc.throughput)
        _put(params, "diskEncryptionSetID", sc.kms_key_id)
        if disk_type in _ULTRA:
            params["cachingMode"] = "None"
    elif sc.provider is Provider.NFS:
        _put(params, "server", sc.server)
        _put(params, "share", sc.share)
    elif sc.provider in (Provider.CEPH_RBD, Provider.CEPHFS):
        _put(params, "clusterID", sc.cluster_id)
        _put(params, "pool", sc.pool)
        _put(params, "fsName", sc.fs_name)
        if sc.provider is Provider.CEPH_RBD:
            params["imageFeatures"] = "layering"
    if sc.fs_type:
        params["csi.storage.k8s.io/fstype"] = sc.fs_type
    params.update(sc.parameters)
    return (sc.provisioner or preset.provisioner), params


def _put(params: dict[str, str], key: str, value: object) -> None:
    if value is not None:
        params[key] = str(value)


def storage_classes(spec: TrainingCluster) -> list[dict[str, Any]]:
    """StorageClass objects for every class the spec declares and berth creates."""
    out = []
    for name, sc in spec.spec.storage_classes.items():
        if sc.existing:
            continue
        assert sc.provider is not None
        provisioner, params = class_parameters(sc)
        reclaim = sc.reclaim_policy or ("Retain" if sc.tier is Tier.HOT else "Delete")
        annotations = {"berth.dev/tier": sc.tier.value}
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
            "metadata": meta(spec, sv.claim_name, "storage", annotations={"berth.dev/protect": "true"}),
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
