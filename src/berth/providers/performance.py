"""What a StorageClass promises a volume: IOPS and throughput, from its parameters and the volume's size.

``berth probe`` measures a volume and compares it with this; only figures a provider documents
as provisioned are promised (a baseline the disk must sustain, not a burst), everything else
is None and never reported as slow. Sources (with :mod:`berth.providers.limits`):

- EBS gp3: 3,000 IOPS and 125 MiB/s included, or the class's ``iops``/``throughput``
  (general-purpose.html); gp2: 3 IOPS per GiB, at least 100, at most 16,000; 128 MiB/s up to
  170 GiB, 250 MiB/s from 334 GiB (between the two only with burst credits, so 128 promised).
- EBS io1/io2: the class's ``iops``, else ``iopsPerGB`` × size up to the type's maximum
  (provisioned-iops.html); their throughput depends on the I/O size, so none is promised.
- EBS st1/sc1: 40 / 12 MiB/s baseline per TiB, at most 500 / 192 MiB/s (hdd-vols.html).
- GCE PD / Hyperdisk: ``provisioned-iops-on-create`` and ``provisioned-throughput-on-create``
  when the class sets them; Azure Disk: ``DiskIOPSReadWrite`` and ``DiskMBpsReadWrite``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from berth.providers.limits import (
    AZURE_DISK_PROVISIONERS,
    GCE_PD_PROVISIONERS,
    TIB_IN_GIB,
    ebs_limits,
    ebs_type,
)

GP2_IOPS_PER_GIB = 3
GP2_MIN_IOPS, GP2_MAX_IOPS = 100, 16000
GP2_SMALL_MIB_S, GP2_LARGE_MIB_S, GP2_LARGE_FROM_GIB = 128, 250, 334
# st1 / sc1: baseline MiB/s per TiB, and the per-volume maximum.
HDD_BASELINE = {"st1": (40, 500), "sc1": (12, 192)}


@dataclass(frozen=True)
class Promise:
    """Provisioned figures of one volume (None: nothing promised) and where they come from."""

    iops: int | None
    throughput_mib_s: float | None
    source: str


def promised(provisioner: str, params: Mapping[str, str], size_gib: float) -> Promise:
    """What a volume of ``size_gib`` on a class (provisioner + parameters) is provisioned to do."""
    volume_type = ebs_type(provisioner, params)
    if volume_type is not None:
        return _ebs(volume_type, params, size_gib)
    if provisioner in GCE_PD_PROVISIONERS:
        iops = _int(params.get("provisioned-iops-on-create"))
        mib = _int(str(params.get("provisioned-throughput-on-create", "")).removesuffix("Mi"))
        return Promise(iops, mib, f"{params.get('type', 'pd')} provisioned-*-on-create")
    if provisioner in AZURE_DISK_PROVISIONERS:
        iops, mib = _int(params.get("DiskIOPSReadWrite")), _int(params.get("DiskMBpsReadWrite"))
        return Promise(iops, mib, f"{params.get('skuName', 'Azure disk')} DiskIOPSReadWrite/DiskMBpsReadWrite")
    return Promise(None, None, f"{provisioner or 'this class'} documents no provisioned performance")


def _ebs(volume_type: str, params: Mapping[str, str], size_gib: float) -> Promise:
    limits = ebs_limits(volume_type)
    iops, mib = _int(params.get("iops")), _int(params.get("throughput"))
    if volume_type == "gp3" and limits is not None:
        return Promise(iops or limits.min_iops, mib or limits.min_throughput, "EBS gp3")
    if volume_type == "gp2":
        base = int(min(max(GP2_IOPS_PER_GIB * size_gib, GP2_MIN_IOPS), GP2_MAX_IOPS))
        tput = GP2_LARGE_MIB_S if size_gib >= GP2_LARGE_FROM_GIB else GP2_SMALL_MIB_S
        return Promise(base, tput, f"EBS gp2, {size_gib:g} GiB")
    if volume_type in ("io1", "io2") and limits is not None:
        per_gib = _int(params.get("iopsPerGB"))
        if iops is None and per_gib is not None:
            iops = int(min(per_gib * size_gib, limits.max_iops or per_gib * size_gib))
        return Promise(iops, None, f"EBS {volume_type}")
    if volume_type in HDD_BASELINE:
        per_tib, cap = HDD_BASELINE[volume_type]
        return Promise(None, min(per_tib * size_gib / TIB_IN_GIB, cap), f"EBS {volume_type}, {size_gib:g} GiB")
    return Promise(None, None, f"EBS {volume_type} documents no provisioned performance")


def _int(raw: object) -> int | None:
    try:
        return int(str(raw)) if raw is not None and str(raw) != "" else None
    except ValueError:
        return None
