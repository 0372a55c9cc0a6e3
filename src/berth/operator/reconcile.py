"""One reconcile of a TrainingCluster custom resource, without kopf: the operator's library half.

The CR becomes the same :class:`~berth.spec.model.TrainingCluster` a ``berth.yaml`` does
(``spec.load.spec_from_data``: the CLI's validation and located errors), and is applied by the
same :func:`berth.kube.up.up` (server-side apply, field manager ``berth``, forced: the operator
owns the fields it renders). Status is computed from ``kube.status.collect`` — the snapshot
``berth status`` prints — so the CLI and the CR never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.contract import API_GROUP, KIND, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY
from berth.errors import BerthError
from berth.quantity import parse_quantity

if TYPE_CHECKING:
    from berth.kube.apply import ObjectResult
    from berth.kube.client import Kube
    from berth.kube.status import ClusterState
    from berth.spec.model import TrainingCluster

CONDITIONS = ("Ready", "Progressing", "Degraded", "Succeeded", "Failed")


def spec_from_cr(body: dict[str, Any]) -> TrainingCluster:
    """The CR as a berth spec; raises ``SpecError`` naming each bad field (``spec.volumes.data.size``)."""
    from berth.spec.load import spec_from_data

    meta = body.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    data = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {"name": name, "namespace": namespace},
        "spec": body.get("spec"),
    }
    return spec_from_data(data, filename=f"{KIND} {namespace}/{name}")


@dataclass
class Outcome:
    """What one reconcile did and saw."""

    results: list[ObjectResult] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)  # drift set back: "StatefulSet x: spec.replicas"
    resized: list[str] = field(default_factory=list)  # "claim data-x-0: 1Gi → 2Gi", "StatefulSet x recreated …"
    state: ClusterState | None = None
    error: str | None = None  # a spec the controller cannot render (or apply): the located message
    reason: str = "InvalidSpec"  # or ResizeRefused (shrink, class that cannot expand), ApplyFailed


def grow_volumes(kube: Kube, spec: TrainingCluster) -> list[str]:
    """Grow claims and the StatefulSet's templates to the spec's sizes: ``berth resize --yes``'s procedure.

    ``plan_resize`` (the CLI's) decides and refuses a shrink or a class that cannot expand with a
    located ``SpecError`` before anything is written; then each growing claim is patched and the
    StatefulSet recreated with orphaned pods by ``resize``'s own ``_recreate``. (``resize()`` itself
    refuses operator-managed clusters, which is why the operator calls its two halves.) What was
    done comes back as lines for the Event and status.
    """
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    from berth.kube.resize import _recreate, plan_resize

    plan = plan_resize(kube, spec, filename=f"{KIND} {spec.namespace}/{spec.name}")
    done: list[str] = []
    for claim in plan.claims:
        body = {"spec": {"resources": {"requests": {"storage": claim.after}}}}
        kube.call(
            f"patch PersistentVolumeClaim {spec.namespace}/{claim.name}",
            lambda c=claim, b=body: kube.client.patch(  # type: ignore[misc]
                PersistentVolumeClaim, c.name, b, namespace=spec.namespace
            ),
        )
        done.append(f"claim {claim.name}: {claim.before} → {claim.after}")
    if plan.templates:
        _recreate(kube, spec, lambda _line: None, 60)
        grown = ", ".join(f"{name} {before} → {after}" for name, (before, after) in plan.templates.items())
        done.append(f"StatefulSet {spec.name} recreated with {grown} (pods kept)")
    return done


def reconcile(kube: Kube, body: dict[str, Any]) -> Outcome:
    """Grow volumes, apply the CR through ``kube.up``, snapshot the cluster; a bad spec is an ``Outcome.error``.

    Volumes grow first: a StatefulSet's claim templates are immutable, so applying a bigger size
    would fail. Updates while the CR's generation is the one already observed are drift: someone
    changed an owned object by hand, and the forced apply set it back.
    """
    from berth.kube.status import collect
    from berth.kube.up import up
    from berth.spec.errors import SpecError

    try:
        spec = spec_from_cr(body)
    except SpecError as err:
        return Outcome(error=err.message)
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    # Sizes change only with the spec; a drift resync of an observed, healthy generation skips the check.
    conditions = {c.get("type"): c for c in (body.get("status") or {}).get("conditions") or []}
    settled = observed == generation and (conditions.get("Degraded") or {}).get("status") != "True"
    try:
        resized = [] if settled else grow_volumes(kube, spec)
    except SpecError as err:
        return Outcome(error=err.message, reason="ResizeRefused")
    except BerthError as err:
        return Outcome(error=err.message + (f" ({err.hint})" if err.hint else ""), reason="ApplyFailed")
    try:
        result = up(kube, spec, force=True, wait=False)
    except BerthError as err:
        return Outcome(error=err.message + (f" ({err.hint})" if err.hint else ""), reason="ApplyFailed")
    out = Outcome(results=result.results, resized=resized)
    if observed is not None and observed == generation:
        out.corrected = [
            f"{r.kind} {r.name}: {', '.join(r.changed) or 'changed'}" for r in result.results if r.action == "update"
        ]
    sts = next((r for r in result.results if r.kind == "StatefulSet"), None)
    if sts is not None and sts.action == "create":
        return out  # created a moment ago: no pods or claims to see yet (Progressing); the resync looks
    out.state = collect(kube, spec.name, spec.namespace, nodes=False, require=False)
    return out


def _condition(
    kind: str,
    on: bool,
    reason: str,
    message: str,
    previous: dict[str, dict[str, Any]],
    generation: int | None,
    now: str,
) -> dict[str, Any]:
    status = "True" if on else "False"
    before = previous.get(kind)
    since = (
        before["lastTransitionTime"]
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else now
    )
    cond: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def status_of(body: dict[str, Any], outcome: Outcome, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The CR's ``status``: observedGeneration, phase, replicas, conditions, per-rank summary."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = body.get("metadata") or {}
    generation = meta.get("generation")
    desired = int((body.get("spec") or {}).get("replicas") or 0)
    old = body.get("status") or {}
    previous = {str(c.get("type")): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    selector = f"{LABEL_INSTANCE}={meta.get('name')},{LABEL_MANAGED_BY}={MANAGED_BY}"

    def cond(kind: str, on: bool, reason: str, message: str = "") -> dict[str, Any]:
        return _condition(kind, on, reason, message, previous, generation, stamp)

    if outcome.error is not None:
        why = outcome.reason
        return {
            "observedGeneration": generation,
            "phase": "Degraded",
            "replicas": old.get("replicas", 0),
            "readyReplicas": old.get("readyReplicas", 0),
            "ready": old.get("ready", f"0/{desired}"),
            "selector": selector,
            "conditions": [
                cond("Ready", False, why, "the spec cannot be applied"),
                cond("Progressing", False, why, "fix the spec"),
                cond("Degraded", True, why, outcome.error),
                cond("Succeeded", False, why),
                cond("Failed", False, why),
            ],
            "ranks": old.get("ranks", []),
            "corrected": [],
        }
    state = outcome.state
    ready = state.ready_replicas if state else 0
    replicas = state.replicas if state else 0
    run = state.run if state else None
    run_phase = run.phase if run else None
    if run_phase in ("Succeeded", "Failed"):
        phase = run_phase
    elif state is not None and state.exists and ready >= desired and replicas == desired:
        phase = "Ready"
    else:
        phase = run_phase or "Progressing"
    message = f"{ready}/{desired} pods ready"
    # A claim asked to grow whose capacity has not caught up: the resizer is still at work.
    growing = [
        f"claim {c.name}: {c.requested} requested, {c.capacity or 'no capacity yet'}"
        for c in (state.claims if state else [])
        if c.requested and c.capacity and not c.deleting and parse_quantity(c.capacity) < parse_quantity(c.requested)
    ]
    settled = phase in ("Ready", "Succeeded", "Failed") and not growing and not outcome.resized
    if outcome.resized or growing:
        progressing = ("VolumesResizing", "; ".join(outcome.resized + growing))
    elif not settled:
        progressing = ("RollingOut", state.rollout if state else "")
    else:
        progressing = ("Settled", state.rollout if state else "")
    conditions = [
        cond("Ready", phase == "Ready", "AllRanksReady" if phase == "Ready" else "RanksNotReady", message),
        cond("Progressing", not settled, *progressing),
        cond(
            "Degraded",
            bool(outcome.corrected),
            "DriftCorrected" if outcome.corrected else "AsSpecified",
            "; ".join(outcome.corrected),
        ),
        cond("Succeeded", phase == "Succeeded", "RunSucceeded" if phase == "Succeeded" else "NotFinished"),
        cond(
            "Failed",
            phase == "Failed",
            (run.reason or "RunFailed") if run and phase == "Failed" else "NotFailed",
            (run.last_line or "") if run and phase == "Failed" else "",
        ),
    ]
    ranks: list[dict[str, Any]] = []
    for pod in state.pods if state else []:
        if pod.ordinal is None:
            continue
        rank: dict[str, Any] = {
            "rank": pod.ordinal,
            "pod": pod.name,
            "phase": pod.phase,
            "ready": pod.ready,
            "restarts": pod.restarts,
        }
        if pod.node:
            rank["node"] = pod.node
        if pod.run is not None:
            rank["phase"] = pod.run.phase
            if pod.run.step is not None:
                rank["step"] = pod.run.step
            if pod.run.exit_code is not None:
                rank["exitCode"] = pod.run.exit_code
        ranks.append(rank)
    return {
        "observedGeneration": generation,
        "phase": phase,
        "replicas": replicas,
        "readyReplicas": ready,
        "ready": f"{ready}/{desired}",
        "selector": selector,
        "conditions": conditions,
        "ranks": sorted(ranks, key=lambda r: r["rank"]),
        "corrected": outcome.corrected,
    }


def write_status(kube: Kube, name: str, namespace: str, status: dict[str, Any]) -> None:
    """Merge-patch the CR's status subresource (the operator is its only writer)."""
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.types import PatchType

    resource = create_namespaced_resource(API_GROUP, "v1alpha1", KIND, "trainingclusters")

    def send() -> Any:
        return kube.client.patch(
            resource.Status, name, {"status": status}, namespace=namespace, patch_type=PatchType.MERGE
        )

    kube.call(f"patch {KIND} {namespace}/{name} status", send)


def delete_volumes(body: dict[str, Any]) -> bool:
    """Whether deleting the CR deletes its claims: ``spec.volumeRetention.whenDeleted: Delete`` only."""
    retention = ((body.get("spec") or {}).get("volumeRetention") or {}).get("whenDeleted", "Retain")
    return bool(retention == "Delete")
