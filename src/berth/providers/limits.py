"""Cloud block-storage facts, limits and tiers, shared by the spec validator and ``berth lint``.

One place for the numbers so the spec checker and the linter can never disagree. Every
limit cites the provider documentation it comes from; when a provider raises a limit,
change it here (and keep the older value in ``LEGACY`` if clusters still hit it).

Sources:
- AWS EBS volume types: https://docs.aws.amazon.com/ebs/latest/userguide/ebs-volume-types.html
  gp3/gp2: https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html
  io1/io2: https://docs.aws.amazon.com/ebs/latest/userguide/provisioned-iops.html
  st1/sc1: https://docs.aws.amazon.com/ebs/latest/userguide/hdd-vols.html
- EBS CSI StorageClass parameters: aws-ebs-csi-driver, docs/parameters.md
  (type, iops, iopsPerGB, allowAutoIOPSPerGBIncrease, throughput, encrypted, kmsKeyId).
- GCE PD CSI parameters (type, replication-type): https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/gce-pd-csi-driver
- Azure Disk CSI parameters (skuName): https://learn.microsoft.com/azure/aks/azure-disk-csi
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

GIB = 1024**3
TIB_IN_GIB = 1024


class Tier(StrEnum):
    """Storage tiers: hot for checkpoints and active data, warm for datasets, cold is object storage."""

    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


AWS_EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
GCE_PD_PROVISIONERS = frozenset({"pd.csi.storage.gke.io", "kubernetes.io/gce-pd"})
AZURE_DISK_PROVISIONERS = frozenset({"disk.csi.azure.com", "kubernetes.io/azure-disk"})
# In-tree plugins removed from Kubernetes (CSI migration); the names only work through migration.
IN_TREE_PROVISIONERS = frozenset(
    {
        "kubernetes.io/aws-ebs",
        "kubernetes.io/gce-pd",
        "kubernetes.io/azure-disk",
        "kubernetes.io/azure-file",
        "kubernetes.io/cinder",
        "kubernetes.io/vsphere-volume",
    }
)
# Block disks that live in exactly one zone: a pod scheduled elsewhere cannot attach them.
ZONAL_BLOCK_PROVISIONERS = (
    AWS_EBS_PROVISIONERS
    | GCE_PD_PROVISIONERS
    | AZURE_DISK_PROVISIONERS
    | frozenset({"cinder.csi.openstack.org", "kubernetes.io/cinder", "csi.vsphere.vmware.com"})
)
# Provisioners whose volumes cannot be expanded (node-local paths, static local PVs).
NON_EXPANDABLE_PROVISIONERS = frozenset({"kubernetes.io/no-provisioner", "rancher.io/local-path"})
# Class names that clusters commonly ship by default (EKS, GKE, AKS, kind, minikube, k3s).
WELL_KNOWN_STORAGE_CLASSES = frozenset(
    {
        "gp2",
        "gp3",
        "standard",
        "standard-rwo",
        "premium-rwo",
        "default",
        "managed",
        "managed-csi",
        "managed-csi-premium",
        "managed-premium",
        "azurefile",
        "azurefile-csi",
        "local-path",
        "hostpath",
    }
)


@dataclass(frozen=True)
class EbsLimits:
    """Limits of one EBS volume type (sizes in GiB, throughput in MiB/s)."""

    min_size_gib: int
    max_size_gib: int
    min_iops: int | None = None
    max_iops: int | None = None
    max_iops_per_gib: float | None = None
    min_throughput: int | None = None
    max_throughput: int | None = None
    max_throughput_per_iops: float | None = None
    hdd: bool = False


# Current limits. gp3: 1 GiB-64 TiB, 3,000-80,000 IOPS, 125-2,000 MiB/s, 500 IOPS/GiB,
# 0.25 MiB/s per IOPS (general-purpose.html). io2 (all Block Express): 4 GiB-64 TiB,
# 100-256,000 IOPS, 1,000 IOPS/GiB. io1: 4 GiB-16 TiB, 100-64,000 IOPS, 50 IOPS/GiB
# (provisioned-iops.html). st1/sc1: 125 GiB-16 TiB, HDD (hdd-vols.html). gp2: 1 GiB-16 TiB.
EBS: dict[str, EbsLimits] = {
    "gp3": EbsLimits(1, 64 * TIB_IN_GIB, 3000, 80000, 500, 125, 2000, 0.25),
    "gp2": EbsLimits(1, 16 * TIB_IN_GIB),
    "io2": EbsLimits(4, 64 * TIB_IN_GIB, 100, 256000, 1000),
    "io1": EbsLimits(4, 16 * TIB_IN_GIB, 100, 64000, 50),
    "st1": EbsLimits(125, 16 * TIB_IN_GIB, hdd=True),
    "sc1": EbsLimits(125, 16 * TIB_IN_GIB, hdd=True),
    "standard": EbsLimits(1, 1024, hdd=True),
}
# Limits before the 2025 gp3 increase and for io2 outside Block Express (older regions and
# instance types): gp3 16 TiB, 16,000 IOPS, 1,000 MiB/s; io2 16 TiB, 64,000 IOPS, 500 IOPS/GiB.
LEGACY: dict[str, EbsLimits] = {
    "gp3": EbsLimits(1, 16 * TIB_IN_GIB, 3000, 16000, 500, 125, 1000, 0.25),
    "io2": EbsLimits(4, 16 * TIB_IN_GIB, 100, 64000, 500),
}
# EBS CSI driver default volume type when ``type`` is absent.
EBS_DEFAULT_TYPE = "gp3"
# Persistent-disk types backed by spinning disks.
GCE_HDD_TYPES = frozenset({"pd-standard"})
AZURE_HDD_SKUS = frozenset({"Standard_LRS", "Standard_ZRS"})


def ebs_type(provisioner: str, params: Mapping[str, str]) -> str | None:
    """The EBS volume type a class provisions, or None when it is not an EBS class."""
    if provisioner not in AWS_EBS_PROVISIONERS:
        return None
    default = EBS_DEFAULT_TYPE if provisioner == "ebs.csi.aws.com" else "gp2"
    return str(params.get("type", default)).lower()


def ebs_limits(volume_type: str, *, legacy: bool = False) -> EbsLimits | None:
    """Limits for an EBS type; ``legacy`` selects the pre-increase values where they differ."""
    if legacy and volume_type in LEGACY:
        return LEGACY[volume_type]
    return EBS.get(volume_type)


def is_zonal_block(provisioner: str, params: Mapping[str, str]) -> bool:
    """True when volumes of this class are bound to a single zone (regional PD / ZRS are not)."""
    if provisioner not in ZONAL_BLOCK_PROVISIONERS:
        return False
    if provisioner in GCE_PD_PROVISIONERS:
        return str(params.get("replication-type", "none")).lower() != "regional-pd"
    if provisioner in AZURE_DISK_PROVISIONERS:
        sku = str(params.get("skuName", params.get("storageaccounttype", "")))
        return not sku.endswith("_ZRS")
    return True


def is_hdd(provisioner: str, params: Mapping[str, str]) -> bool:
    """True when the class provisions spinning-disk media (bad for checkpoint bursts)."""
    volume_type = ebs_type(provisioner, params)
    if volume_type is not None:
        limits = EBS.get(volume_type)
        return limits is not None and limits.hdd
    if provisioner in GCE_PD_PROVISIONERS:
        return str(params.get("type", "pd-standard")) in GCE_HDD_TYPES
    if provisioner in AZURE_DISK_PROVISIONERS:
        sku = str(params.get("skuName", params.get("storageaccounttype", "StandardSSD_LRS")))
        return sku in AZURE_HDD_SKUS
    return False


def is_encrypted(provisioner: str, params: Mapping[str, str]) -> bool | None:
    """Whether volumes are encrypted at rest: None when the provider is unknown.

    EBS is encrypted only with ``encrypted: "true"`` (or account-level default encryption,
    which a manifest cannot show); GCE PD and Azure Disk always encrypt at rest.
    """
    if provisioner in AWS_EBS_PROVISIONERS:
        return str(params.get("encrypted", "false")).lower() == "true"
    if provisioner in GCE_PD_PROVISIONERS or provisioner in AZURE_DISK_PROVISIONERS:
        return True
    return None


def infer_tier(provisioner: str, params: Mapping[str, str]) -> Tier | None:
    """Media tier guessed from the class: HDD is cold, provisioned-IOPS SSD is hot."""
    if is_hdd(provisioner, params):
        return Tier.COLD
    volume_type = ebs_type(provisioner, params)
    if volume_type in {"io1", "io2"}:
        return Tier.HOT
    if provisioner in GCE_PD_PROVISIONERS and str(params.get("type", "")) in {"pd-ssd", "pd-extreme"}:
        return Tier.HOT
    if volume_type is not None:
        return Tier.WARM
    return None


def _number(params: Mapping[str, str], key: str, problems: list[str]) -> float | None:
    if key not in params:
        return None
    try:
        return float(str(params[key]))
    except ValueError:
        problems.append(f"parameter {key}={params[key]!r} is not a number")
        return None


def _range(value: float | None, low: float | None, high: float | None, what: str, out: list[str]) -> None:
    if value is None:
        return
    if low is not None and value < low:
        out.append(f"{what} {value:g} is below the minimum {low:g}")
    if high is not None and value > high:
        out.append(f"{what} {value:g} is above the maximum {high:g}")


def check_storage_class_params(provisioner: str, params: Mapping[str, str], *, legacy: bool = False) -> list[str]:
    """Problems with a StorageClass's parameters that the provider would reject; [] when fine.

    Only checks what can be decided without the volume size (see ``check_volume_size``).
    """
    volume_type = ebs_type(provisioner, params)
    if volume_type is None:
        return []
    limits = ebs_limits(volume_type, legacy=legacy)
    if limits is None:
        return [f"unknown EBS volume type {volume_type!r} (expected one of {', '.join(sorted(EBS))})"]
    problems: list[str] = []
    iops = _number(params, "iops", problems)
    per_gb = _number(params, "iopsPerGB", problems)
    throughput = _number(params, "throughput", problems)
    if iops is not None and limits.max_iops is None:
        problems.append(f"{volume_type} does not take provisioned iops")
    elif iops is not None:
        _range(iops, limits.min_iops, limits.max_iops, f"{volume_type} iops", problems)
    if per_gb is not None:
        if limits.max_iops_per_gib is None or volume_type == "gp3":
            problems.append(f"iopsPerGB applies to io1/io2, not {volume_type}")
        else:
            _range(per_gb, None, limits.max_iops_per_gib, f"{volume_type} iopsPerGB", problems)
    if throughput is not None:
        if limits.max_throughput is None:
            problems.append(f"{volume_type} does not take provisioned throughput")
        else:
            _range(throughput, limits.min_throughput, limits.max_throughput, "gp3 throughput MiB/s", problems)
            effective_iops = iops if iops is not None else limits.min_iops
            if effective_iops and limits.max_throughput_per_iops is not None:
                ratio = throughput / effective_iops
                if ratio > limits.max_throughput_per_iops:
                    problems.append(
                        f"throughput/iops ratio {ratio:.3f} MiB/s per IOPS is above "
                        f"{limits.max_throughput_per_iops} (raise iops to at least "
                        f"{throughput / limits.max_throughput_per_iops:g})"
                    )
    return problems


def max_volume_size_gib(provisioner: str, params: Mapping[str, str], *, legacy: bool = False) -> int | None:
    """Largest volume the class can provision, in GiB; None when unknown."""
    volume_type = ebs_type(provisioner, params)
    limits = ebs_limits(volume_type, legacy=legacy) if volume_type else None
    return limits.max_size_gib if limits else None


def check_volume_size(
    provisioner: str, params: Mapping[str, str], size_bytes: float, *, legacy: bool = False
) -> list[str]:
    """Problems provisioning a volume of ``size_bytes`` from this class; [] when fine."""
    volume_type = ebs_type(provisioner, params)
    limits = ebs_limits(volume_type, legacy=legacy) if volume_type else None
    if volume_type is None or limits is None:
        return []
    size_gib = size_bytes / GIB
    problems: list[str] = []
    if size_gib < limits.min_size_gib:
        problems.append(f"{volume_type} volumes must be at least {limits.min_size_gib} GiB, got {size_gib:g} GiB")
    if size_gib > limits.max_size_gib:
        problems.append(f"{volume_type} volumes are at most {limits.max_size_gib} GiB, got {size_gib:g} GiB")
    ignored: list[str] = []
    iops = _number(params, "iops", ignored)
    if iops is not None and limits.max_iops_per_gib is not None and iops > limits.max_iops_per_gib * size_gib:
        problems.append(
            f"{iops:g} iops on {size_gib:g} GiB exceeds {limits.max_iops_per_gib:g} IOPS/GiB "
            f"(needs at least {iops / limits.max_iops_per_gib:g} GiB)"
        )
    per_gb = _number(params, "iopsPerGB", ignored)
    auto = str(params.get("allowAutoIOPSPerGBIncrease", "false")).lower() == "true"
    if per_gb is not None and limits.min_iops is not None and not auto and per_gb * size_gib < limits.min_iops:
        problems.append(
            f"iopsPerGB {per_gb:g} x {size_gib:g} GiB = {per_gb * size_gib:g} IOPS is below the "
            f'{volume_type} minimum {limits.min_iops} (set allowAutoIOPSPerGBIncrease: "true")'
        )
    return problems
