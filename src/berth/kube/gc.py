"""Claims left behind by scale-down: found by name pattern and labels, deleted only when asked.

A claim is garbage only if the StatefulSet controller made it from this cluster's
templates (``<template>-<sts>-<ordinal>`` *and* the template's labels), its ordinal is at
or above the replica count, no pod in the namespace mounts it, and it does not carry
``berth.dev/protect: "true"``. Every other claim is kept whatever the flags, and the
report says why. Kubernetes' own ``pvc-protection`` finalizer is the last line: a claim
a pod starts to use between our list and our delete stays until that pod is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.contract import LABEL_INSTANCE
from berth.kube.deletion import keep_reason
from berth.kube.status import ClaimRow, ClusterState, collect

if TYPE_CHECKING:
    from berth.kube.client import Kube


@dataclass
class Verdict:
    """One per-replica claim of the cluster and what gc does with it."""

    claim: ClaimRow
    delete: bool
    reason: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return {
            "name": self.claim.name,
            "template": self.claim.template,
            "ordinal": self.claim.ordinal,
            "size": self.claim.capacity or self.claim.requested,
            "ageSeconds": self.claim.age_s,
            "delete": self.delete,
            "deleted": self.deleted,
            "reason": self.reason,
        }


def _template_labels(state: ClusterState, template: str | None) -> dict[str, str] | None:
    if state.statefulset is None:
        return None
    for tpl in state.statefulset.get("spec", {}).get("volumeClaimTemplates") or []:
        if tpl["metadata"]["name"] == template:
            return dict(tpl["metadata"].get("labels") or {})
    return None


def judge(state: ClusterState, claim: ClaimRow) -> Verdict:
    """Whether ``claim`` is garbage; the first reason to keep it wins."""
    assert claim.ordinal is not None
    if claim.ordinal < state.replicas:
        return Verdict(claim, False, f"in use: replica {claim.ordinal} of {state.replicas}")
    if claim.mounted_by:
        return Verdict(claim, False, f"mounted by {', '.join(claim.mounted_by)}")
    held = keep_reason("PersistentVolumeClaim", protected=claim.protected, volumes_kept=None)
    if held is not None:
        return Verdict(claim, False, held)
    wanted = _template_labels(state, claim.template)
    if wanted is None:
        wanted = {LABEL_INSTANCE: state.name}
    if any(claim.labels.get(k) != v for k, v in wanted.items()):
        return Verdict(claim, False, "name fits but labels do not: not made from this cluster's template")
    if claim.deleting:
        return Verdict(claim, False, "already being deleted")
    return Verdict(claim, True, f"orphaned: ordinal {claim.ordinal} ≥ replicas {state.replicas}")


def find(kube: Kube, name: str, namespace: str) -> tuple[ClusterState, list[Verdict]]:
    """Every per-replica claim of ``name`` with its verdict; works after ``down`` too (replicas 0)."""
    state = collect(kube, name, namespace, nodes=False, all_pods=True, require=False)
    return state, [judge(state, c) for c in state.claims]


def collect_garbage(kube: Kube, name: str, namespace: str, *, yes: bool) -> tuple[ClusterState, list[Verdict]]:
    """Find orphans; delete them only with ``yes``."""
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    state, verdicts = find(kube, name, namespace)
    if not yes:
        return state, verdicts
    for verdict in verdicts:
        if verdict.delete:
            kube.delete(PersistentVolumeClaim, verdict.claim.name, namespace)
            verdict.deleted = True
    return state, verdicts


# ---- released volumes: the disks a Retain class keeps after gc deletes their claims -------------

RELEASED_KEPT = "released: still billed; pass --delete-released-volumes to delete it"


@dataclass
class VolumeVerdict:
    """A Released PersistentVolume that was bound to one of this cluster's per-replica claims."""

    name: str
    claim: str
    storage_class: str | None
    size: str | None
    reclaim: str | None
    age_s: float | None
    delete: bool
    reason: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return {
            "name": self.name,
            "claim": self.claim,
            "storageClass": self.storage_class,
            "size": self.size,
            "reclaimPolicy": self.reclaim,
            "ageSeconds": self.age_s,
            "delete": self.delete,
            "deleted": self.deleted,
            "reason": self.reason,
        }


def judge_volume(
    pv: Any, state: ClusterState, live_claims: dict[str, str], *, delete_released: bool
) -> VolumeVerdict | None:
    """The verdict for one PV, or None when it was never bound to a per-replica claim of this cluster."""
    import datetime as dt

    from berth.kube.claims import parse_claim_name
    from berth.kube.deletion import is_protected

    md, spec, st = pv.metadata, pv.spec, pv.status
    ref = spec.claimRef if spec else None
    if ref is None or ref.namespace != state.namespace or not ref.name:
        return None
    if parse_claim_name(ref.name, state.name, state.templates) is None:
        return None
    phase = (st.phase if st else None) or "Unknown"
    if phase not in ("Released", "Failed"):
        return None  # Bound or Available: in use or reusable, never gc's business
    created = md.creationTimestamp if md else None
    verdict = VolumeVerdict(
        name=md.name,
        claim=f"{ref.namespace}/{ref.name}",
        storage_class=spec.storageClassName,
        size=(spec.capacity or {}).get("storage"),
        reclaim=spec.persistentVolumeReclaimPolicy,
        age_s=(dt.datetime.now(dt.UTC) - created).total_seconds() if created else None,
        delete=False,
        reason="",
    )
    if ref.uid and live_claims.get(ref.name) == ref.uid:
        verdict.reason = f"its claim {ref.name} still exists"  # never delete a volume a claim holds
        return verdict
    held = keep_reason(
        "PersistentVolume",
        protected=is_protected(md.annotations),
        volumes_kept=None if delete_released else RELEASED_KEPT,
    )
    if held is not None:
        verdict.reason = held
    elif md.deletionTimestamp:
        verdict.reason = "already being deleted"
    else:
        verdict.delete = True
        verdict.reason = f"{phase.lower()}: its claim {ref.name} is gone (reclaim {verdict.reclaim})"
    return verdict


def released_volumes(kube: Kube, state: ClusterState, *, delete_released: bool, yes: bool) -> list[VolumeVerdict]:
    """Released PVs of this cluster's claims; deleted only with ``delete_released`` and ``yes``."""
    from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

    pvs = kube.call("list PersistentVolumes", lambda: list(kube.client.list(PersistentVolume)))
    claims = kube.call(
        f"list PersistentVolumeClaims in {state.namespace}",
        lambda: list(kube.client.list(PersistentVolumeClaim, namespace=state.namespace)),
    )
    live = {c.metadata.name: c.metadata.uid or "" for c in claims if c.metadata and c.metadata.name}
    verdicts = [v for pv in pvs if (v := judge_volume(pv, state, live, delete_released=delete_released))]
    verdicts.sort(key=lambda v: v.claim)
    if yes and delete_released:
        for verdict in verdicts:
            if verdict.delete:
                kube.delete(PersistentVolume, verdict.name, None)
                verdict.deleted = True
    return verdicts
