"""StorageClass presets: each provider's CSI driver, disk types and the spec fields it takes.

A preset turns the few settings of a spec's ``storageClasses`` entry into the driver's own
``parameters``; the spec validator checks them against :mod:`berth.providers.limits`, the
renderer writes them out. Works on anything shaped like a class entry (:class:`ClassSettings`),
so it needs nothing from the spec model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Provider(StrEnum):
    """StorageClass presets; ``csi`` takes any provisioner and parameters."""

    AWS_EBS = "aws-ebs"
    GCP_PD = "gcp-pd"
    AZURE_DISK = "azure-disk"
    NFS = "nfs"
    CEPH_RBD = "ceph-rbd"
    CEPHFS = "cephfs"
    LOCAL = "local"
    CSI = "csi"


class ClassSettings(Protocol):
    """The preset settings of a class berth creates (the spec's ``StorageClassSpec``)."""

    @property
    def provider(self) -> Provider | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def iops(self) -> int | None: ...
    @property
    def throughput(self) -> int | None: ...
    @property
    def iops_per_gb(self) -> int | None: ...
    @property
    def encrypted(self) -> bool | None: ...
    @property
    def kms_key_id(self) -> str | None: ...
    @property
    def fs_type(self) -> str | None: ...
    @property
    def server(self) -> str | None: ...
    @property
    def share(self) -> str | None: ...
    @property
    def cluster_id(self) -> str | None: ...
    @property
    def pool(self) -> str | None: ...
    @property
    def fs_name(self) -> str | None: ...
    @property
    def provisioner(self) -> str | None: ...
    @property
    def parameters(self) -> Mapping[str, str]: ...


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
    Provider.AWS_EBS: Preset(
        "ebs.csi.aws.com",
        ("gp3", "gp2", "io2", "io1", "st1", "sc1", "standard"),
        "gp3",
        frozenset({"type", "iops", "throughput", "iops_per_gb", "encrypted", "kms_key_id", "fs_type"}),
    ),
    Provider.GCP_PD: Preset(
        "pd.csi.storage.gke.io",
        (
            "pd-ssd",
            "pd-balanced",
            "pd-standard",
            "pd-extreme",
            "hyperdisk-balanced",
            "hyperdisk-throughput",
            "hyperdisk-extreme",
            "hyperdisk-ml",
        ),
        "pd-balanced",
        frozenset({"type", "iops", "throughput", "kms_key_id", "fs_type"}),
    ),
    Provider.AZURE_DISK: Preset(
        "disk.csi.azure.com",
        (
            "Premium_LRS",
            "PremiumV2_LRS",
            "UltraSSD_LRS",
            "StandardSSD_LRS",
            "Standard_LRS",
            "Premium_ZRS",
            "StandardSSD_ZRS",
        ),
        "Premium_LRS",
        frozenset({"type", "iops", "throughput", "kms_key_id", "fs_type"}),
    ),
    Provider.NFS: Preset("nfs.csi.k8s.io", (), None, frozenset({"server", "share"})),
    Provider.CEPH_RBD: Preset("rbd.csi.ceph.com", (), None, frozenset({"cluster_id", "pool", "fs_type"})),
    Provider.CEPHFS: Preset("cephfs.csi.ceph.com", (), None, frozenset({"cluster_id", "fs_name"})),
    Provider.LOCAL: Preset("rancher.io/local-path", (), None, frozenset(), expandable=False),
    Provider.CSI: Preset("", (), None, frozenset({"provisioner", "fs_type"})),
}

REQUIRED: dict[Provider, tuple[str, ...]] = {
    Provider.NFS: ("server", "share"),
    Provider.CEPH_RBD: ("cluster_id", "pool"),
    Provider.CEPHFS: ("cluster_id", "fs_name"),
    Provider.CSI: ("provisioner",),
}
PRESET_FIELDS = (
    "type",
    "iops",
    "throughput",
    "iops_per_gb",
    "encrypted",
    "kms_key_id",
    "fs_type",
    "server",
    "share",
    "cluster_id",
    "pool",
    "fs_name",
    "provisioner",
)
ULTRA_SKUS = ("PremiumV2_LRS", "UltraSSD_LRS")


def class_parameters(sc: ClassSettings) -> tuple[str, dict[str, str]]:
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
        if disk_type in ULTRA_SKUS:
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
