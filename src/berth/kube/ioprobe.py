"""Measured I/O against what the volume's StorageClass provisions: the doctor's "slow I/O" finding.

The probe itself runs where the volume is mounted (:mod:`berth.runtime.ioprobe`); this module
reads the class (one GET), works out its promise for the volume's size
(:mod:`berth.providers.performance`) and turns every figure that falls short into a
:class:`~berth.kube.doctor.Finding`, worded like the guide's troubleshooting entry ("Slow I/O
Performance": measure, then check the volume's IOPS limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from berth.errors import BerthError
from berth.kube.doctor import Finding
from berth.providers.performance import Promise, promised

if TYPE_CHECKING:
    from berth.kube.client import Kube

SLOW_FRACTION = 0.8
"""A figure below this share of the promise is slow I/O (clouds deliver the provisioned rate within
about 10 % most of the time; below 80 % something else is the bottleneck)."""


@dataclass(frozen=True)
class Measured:
    """The four figures compared (MiB/s and IOPS), as the probe reports them."""

    seq_read_mib_s: float
    seq_write_mib_s: float
    rand_read_iops: float
    rand_write_iops: float
    queue_depth: int
    direct: bool


def class_promise(kube: Kube, storage_class: str, size_gib: float) -> Promise:
    """What ``storage_class`` provisions for a volume of ``size_gib``; an unknown class is an error."""
    from lightkube.resources.storage_v1 import StorageClass

    sc = kube.get_or_none(StorageClass, storage_class)
    if sc is None:
        raise BerthError(
            f"StorageClass {storage_class} does not exist", "list the classes with `kubectl get storageclass`"
        )
    return promised(sc.provisioner, dict(sc.parameters or {}), size_gib)


def slow_io(measured: Measured, promise: Promise, *, target: str, storage_class: str) -> list[Finding]:
    """One ``slow-io`` warning per figure below :data:`SLOW_FRACTION` of the promise; none without one."""
    if not measured.direct:
        return []  # page-cache figures say nothing about the disk
    how = f"berth probe, O_DIRECT, 4 KiB random at queue depth {measured.queue_depth}, 1 MiB sequential"
    checks: list[tuple[str, float, float | None, str]] = [
        ("4 KiB random read", measured.rand_read_iops, promise.iops, "IOPS"),
        ("4 KiB random write", measured.rand_write_iops, promise.iops, "IOPS"),
        ("sequential read", measured.seq_read_mib_s, promise.throughput_mib_s, "MiB/s"),
        ("sequential write", measured.seq_write_mib_s, promise.throughput_mib_s, "MiB/s"),
    ]
    found = []
    for what, got, want, unit in checks:
        if want is None or got >= SLOW_FRACTION * want:
            continue
        found.append(
            Finding(
                "warning",
                "slow-io",
                target,
                f"slow I/O: {what} {got:,.0f} {unit}, {got / want:.0%} of the {want:,.0f} {unit} "
                f"StorageClass {storage_class} provisions ({promise.source})",
                how,
                _fix(unit, measured.queue_depth),
            )
        )
    return found


def _fix(unit: str, depth: int) -> str:
    if unit == "IOPS":
        return (
            f"check the volume's provisioned IOPS (kubectl describe pv) and the node's EBS/disk IOPS limit; "
            f"a queue depth below {depth} cannot reach them; raise `iops` in the class if the disk is the limit"
        )
    return (
        "check the node type's storage bandwidth (a small instance caps every volume) and the class's "
        "provisioned throughput; raise `throughput` in the class if the disk is the limit"
    )
