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

from berth.contract import (
    ANNOTATION_SKIP_FINAL_BACKUP,
    API_GROUP,
    KIND,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)
from berth.errors import BerthError
from berth.quantity import parse_quantity

if TYPE_CHECKING:
    from berth.kube.apply import ObjectResult
    from berth.kube.client import Kube
    from berth.kube.status import ClusterState
    from berth.spec.model import TrainingCluster

CONDITIONS = ("Ready", "Progressing", "Degraded", "Succeeded", "Failed")
# How long the delete finalizer waits for Velero's verdict on the last backup before it says so
# (Degraded, Warning Event); it keeps waiting after that, the CR is never deleted without it.
FINAL_BACKUP_TIMEOUT_S = 600.0


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


@dataclass
class FinalBackup:
    """Where the last backup before a delete stands: may the delete go on, and what to tell the user."""

    proceed: bool
    reason: str  # a CamelCase reason for the condition and the Event
    message: str
    warning: bool = False  # something the user has to act on (Degraded, Warning Event)
    name: str | None = None  # the Velero Backup, "<velero namespace>/<name>"
    retry_s: float = 2.0  # when to look again (a kopf retry) if the delete may not go on yet


def final_backup_name(body: dict[str, Any]) -> str:
    """``<cluster>-<namespace>-final-<UTC deletion time>``: the same name on every retry and after a restart.

    Derived from ``metadata.deletionTimestamp``, so the finalizer finds the Backup it created
    without keeping any state of its own, and recognisable among ``berth backup``'s and the
    Schedule's backups. The namespace is cut first to fit Velero's 63 characters.
    """
    from berth.kube.backup import timestamp_name

    meta = body.get("metadata") or {}
    stamp = meta.get("deletionTimestamp")
    deleted = dt.datetime.fromisoformat(str(stamp)) if stamp else dt.datetime.now(dt.UTC)
    # 63 = 42 + "-final" + "-<14 digits>": the namespace is cut first, "-final" never.
    base = f"{meta.get('name')}-{meta.get('namespace') or 'default'}"[:42].rstrip("-")
    return timestamp_name(f"{base}-final", deleted)


def final_backup(
    kube: Kube, body: dict[str, Any], *, timeout_s: float = FINAL_BACKUP_TIMEOUT_S, now: dt.datetime | None = None
) -> FinalBackup:
    """One step of the last backup a deleted CR gets when its spec configures ``backup``; never blocks.

    The first call creates the Velero Backup (``berth backup``'s: same selection and settings,
    the CR's ``spec.backup`` first), later calls read Velero's verdict: Completed lets the delete
    go on; any other end, or no end within ``timeout_s`` of the deletion, keeps the CR with a
    message saying what to do. ``berth.dev/skip-final-backup: "true"`` on the CR skips it. Without
    Velero's CRDs there was never a backup to take (the Schedule could not be applied either):
    the delete goes on with a warning, so a spec copied with a ``backup`` section cannot make
    ``kubectl delete`` hang forever on a cluster without Velero.

    Looked at again after ``retry_s``: a tenth of the time since the deletion, between 2 and 30
    seconds, so a quick backup is followed closely and one stuck for hours costs a request (and
    kopf's "failed temporarily" Event) every 30 s.
    """
    stamp = (body.get("metadata") or {}).get("deletionTimestamp")
    waited = ((now or dt.datetime.now(dt.UTC)) - dt.datetime.fromisoformat(str(stamp))).total_seconds() if stamp else 0
    step = _final_backup_step(kube, body, timeout_s, waited)
    step.retry_s = min(30.0, max(2.0, waited / 10))
    return step


def _final_backup_step(kube: Kube, body: dict[str, Any], timeout_s: float, waited: float) -> FinalBackup:
    from berth.kube import backup as velero
    from berth.spec.errors import SpecError

    meta = body.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace") or "default")
    configured = (body.get("spec") or {}).get("backup")
    if not configured:
        return FinalBackup(True, "NoBackupConfigured", "spec.backup is not set: no last backup")
    skip = f'kubectl annotate tc {name} -n {namespace} {ANNOTATION_SKIP_FINAL_BACKUP}="true"'
    if (meta.get("annotations") or {}).get(ANNOTATION_SKIP_FINAL_BACKUP) == "true":
        return FinalBackup(
            True, "FinalBackupSkipped", f"deleted without a last backup: {ANNOTATION_SKIP_FINAL_BACKUP} is true", True
        )
    try:
        settings = spec_from_cr(body).spec.backup
    except SpecError:
        settings = None  # a CR edited into an invalid spec: the applied spec's settings (plan_backup reads them)
    velero_ns = settings.velero_namespace if settings else str(configured.get("veleroNamespace") or "velero")
    backup_name = final_backup_name(body)
    ref = f"{velero_ns}/{backup_name}"
    try:
        velero.require_velero(kube)
        op = velero.get(kube, "Backup", backup_name, velero_ns)
        if op is None:
            plan = velero.plan_backup(
                kube,
                name,
                namespace,
                backup_name=backup_name,
                velero_namespace=velero_ns,
                ttl=settings.ttl if settings else None,
                storage_location=settings.storage_location if settings else None,
                snapshot_volumes=settings.snapshot_volumes if settings else None,
            )
            velero.create(kube, plan.obj)
            return FinalBackup(
                False,
                "FinalBackupStarted",
                f"Velero Backup {ref} created; the delete waits for it (up to {timeout_s:.0f}s, then says so)",
                name=ref,
            )
    except velero.VeleroMissing as err:
        return FinalBackup(True, "FinalBackupSkipped", f"deleted without a last backup: {err.message}", True)
    except BerthError as err:
        hint = f" ({err.hint})" if err.hint else ""
        return FinalBackup(
            False,
            "FinalBackupError",
            f"{err.message}{hint}; the TrainingCluster stays until it can be taken, or delete it without one: {skip}",
            True,
            ref,
        )
    if op.cluster != name or op.source_namespaces != [namespace]:
        return FinalBackup(
            False,
            "FinalBackupError",
            f"Velero Backup {ref} is of cluster {op.cluster or '?'} in {op.source_namespaces}, not of {name} in "
            f"{namespace} (a cut name clashed); delete it without a last backup: {skip}",
            True,
            ref,
        )
    if op.succeeded:
        return FinalBackup(True, "FinalBackupCompleted", f"Velero Backup {ref} Completed ({op.summary()})", name=ref)
    what_to_do = (
        f"the TrainingCluster stays: see `velero backup describe {backup_name} -n {velero_ns} --details`; "
        f"take one by hand with `berth backup {name} -n {namespace}`, then delete without this one: {skip}"
    )
    problem = op.problem()
    if problem is not None:
        return FinalBackup(False, "FinalBackupFailed", f"{problem}; {what_to_do}", True, ref)
    if waited > timeout_s:
        why = (
            "no Velero server has picked it up (its phase is still empty): "
            f"is Velero's Deployment running in {velero_ns}?"
            if not op.phase
            else f"Velero is still working on it ({op.summary()})"
        )
        return FinalBackup(
            False,
            "FinalBackupTimedOut",
            f"Velero Backup {ref} not done after {waited:.0f}s: {why}; the delete goes on once it completes; "
            f"{what_to_do}",
            True,
            ref,
        )
    return FinalBackup(False, "FinalBackupInProgress", f"waiting for Velero Backup {ref}: {op.summary()}", name=ref)


def deleting_status(body: dict[str, Any], step: FinalBackup, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Status while the delete waits for its last backup: phase ``Deleting``, the backup in the conditions.

    ``Progressing`` names the Backup and Velero's progress; ``Degraded`` is true (with the
    reason and what to do) when the backup failed, timed out or could not be created.
    """
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = body.get("metadata") or {}
    old = body.get("status") or {}
    previous = {str(c.get("type")): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    generation = meta.get("generation")
    changed = {
        "Progressing": _condition("Progressing", True, step.reason, step.message, previous, generation, stamp),
        "Degraded": _condition(
            "Degraded",
            step.warning,
            step.reason if step.warning else "AsSpecified",
            step.message if step.warning else "",
            previous,
            generation,
            stamp,
        ),
    }
    conditions = [changed.get(kind) or previous.get(kind) for kind in CONDITIONS]
    return {"phase": "Deleting", "conditions": [c for c in conditions if c]}
