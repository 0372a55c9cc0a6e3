"""``berth backup`` / ``berth restore``: Velero Backup and Restore objects for one training cluster.

berth does not copy anything itself here: it writes the official ``velero.io/v1`` request
objects Velero's server acts on (into Velero's namespace), follows their ``status`` and reports
it in Velero's own terms (phase, validation errors, failure reason, error and warning counts).
What berth adds is knowing which objects are the cluster's (its ``app.kubernetes.io/instance``
label), the settings of its ``spec.backup``, and when a restore could not do what the user
expects: Velero never overwrites an object that exists, so a restore over a running cluster or
over claims still present would silently keep their current data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from berth.contract import LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY
from berth.errors import BerthError
from berth.kube.claims import parse_claim_name
from berth.kube.client import RETRY_STATUS, discover, object_ref
from berth.kube.errors import translate_status
from berth.render.backup import (
    VELERO_API_VERSION,
    backup_request,
    backup_spec,
    restore_request,
    snapshot_class_annotations,
)

if TYPE_CHECKING:
    import httpx2

    from berth.kube.client import Kube

POLL_S = 1.0
DEFAULT_VELERO_NAMESPACE = "velero"
DEFAULT_TTL = "720h"  # Velero's own default TTL (30 days)
# Phases after which Velero never touches the object again (BackupPhase / RestorePhase enums).
TERMINAL = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})
RESTORABLE = frozenset({"Completed", "PartiallyFailed"})

INSTALL_HINT = (
    "install Velero in the cluster (`velero install --provider <p> --plugins <object-store plugin> "
    "--bucket <b>`, or its Helm chart vmware-tanzu/velero): berth writes velero.io/v1 Backup and "
    "Restore objects and Velero's server does the copying"
)


class VeleroMissing(BerthError):
    """The cluster serves no ``backups.velero.io``/``restores.velero.io``: Velero is not installed."""


@dataclass
class Operation:
    """A Backup or Restore as Velero reports it (``status`` of the object, names as Velero's)."""

    kind: str
    name: str
    namespace: str
    cluster: str
    phase: str = ""
    errors: int = 0
    warnings: int = 0
    validation_errors: list[str] = field(default_factory=list)
    failure_reason: str = ""
    items_done: int | None = None
    items_total: int | None = None
    started: str | None = None
    completed: str | None = None
    expiration: str | None = None
    source_namespaces: list[str] = field(default_factory=list)
    backup_name: str | None = None

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Operation:
        """Read an object as the API server returns it."""
        md, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        progress = status.get("progress") or {}
        done_key = "itemsBackedUp" if obj.get("kind") == "Backup" else "itemsRestored"
        return cls(
            kind=str(obj.get("kind") or ""),
            name=str(md.get("name") or ""),
            namespace=str(md.get("namespace") or ""),
            cluster=str((md.get("labels") or {}).get(LABEL_INSTANCE) or ""),
            phase=str(status.get("phase") or ""),
            errors=int(status.get("errors") or 0),
            warnings=int(status.get("warnings") or 0),
            validation_errors=[str(e) for e in status.get("validationErrors") or []],
            failure_reason=str(status.get("failureReason") or ""),
            items_done=progress.get(done_key),
            items_total=progress.get("totalItems"),
            started=status.get("startTimestamp"),
            completed=status.get("completionTimestamp"),
            expiration=status.get("expiration"),
            source_namespaces=[str(n) for n in spec.get("includedNamespaces") or []],
            backup_name=spec.get("backupName"),
        )

    @property
    def done(self) -> bool:
        """Velero has finished with it (successfully or not)."""
        return self.phase in TERMINAL

    @property
    def succeeded(self) -> bool:
        """Completed without errors."""
        return self.phase == "Completed"

    def summary(self) -> str:
        """One line: phase, progress, counts; the phase stays Velero's word."""
        parts = [self.phase or "New (not picked up by a Velero server yet)"]
        if self.items_total:
            parts.append(f"{self.items_done or 0}/{self.items_total} items")
        if self.errors or self.warnings:
            parts.append(f"{self.errors} errors, {self.warnings} warnings")
        return ", ".join(parts)

    def problem(self) -> str | None:
        """What went wrong, in Velero's words; None when it completed cleanly or is still running."""
        if not self.done or self.succeeded:
            return None
        verb = self.kind.lower()
        what = f"{self.kind} {self.namespace}/{self.name} ended {self.phase}"
        if self.validation_errors:
            return f"{what}: {'; '.join(self.validation_errors)}"
        if self.failure_reason:
            return f"{what}: {self.failure_reason}"
        return f"{what} with {self.errors} errors and {self.warnings} warnings (`velero {verb} logs {self.name}`)"

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for ``-o json``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "cluster": self.cluster,
            "phase": self.phase,
            "errors": self.errors,
            "warnings": self.warnings,
            "validationErrors": self.validation_errors,
            "failureReason": self.failure_reason,
            "itemsDone": self.items_done,
            "itemsTotal": self.items_total,
            "started": self.started,
            "completed": self.completed,
            "expiration": self.expiration,
            "sourceNamespaces": self.source_namespaces,
            "backupName": self.backup_name,
        }


def _path(velero_namespace: str, plural: str, name: str | None = None) -> str:
    base = f"/apis/{VELERO_API_VERSION}/namespaces/{velero_namespace}/{plural}"
    return f"{base}/{name}" if name else base


def _request(
    kube: Kube, method: str, path: str, what: str, body: dict[str, Any] | None = None, *, missing_ok: bool = False
) -> dict[str, Any] | None:
    """One raw API call through the client's retries; a 404 is None when ``missing_ok``."""

    def send() -> httpx2.Response:
        resp = kube.http.request(method, path, json=body)
        if resp.status_code in RETRY_STATUS:
            resp.raise_for_status()  # transient: Kube.call retries it
        return resp

    resp = kube.call(what, send)
    if resp.status_code == 404 and missing_ok:
        return None
    if resp.status_code >= 400:
        raise translate_status(resp.status_code, resp.text, what, kube)
    data: dict[str, Any] = resp.json()
    return data


def require_velero(kube: Kube) -> None:
    """Fail with one message (what to install) unless Backup and Restore are served."""
    missing = [kind for kind in ("Backup", "Restore") if discover(kube, VELERO_API_VERSION, kind) is None]
    if missing:
        crds = ", ".join(f"{k.lower()}s.velero.io" for k in missing)
        raise VeleroMissing(
            f"Velero is not installed in this cluster: no CustomResourceDefinition {crds}", INSTALL_HINT
        )


def timestamp_name(prefix: str, now: datetime | None = None) -> str:
    """``<prefix>-YYYYMMDDhhmmss`` (UTC), Velero's naming of scheduled backups; at most 63 characters."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{prefix[: 63 - len(stamp) - 1].rstrip('-')}-{stamp}"


@dataclass
class BackupPlan:
    """The Backup berth would create, and what it found about the cluster."""

    obj: dict[str, Any]
    claims: list[str]
    statefulset: bool
    notes: list[str]
    archive: str | None = None
    """The applied spec's ``spec.archive.url``: every rank's newest step is flushed there first."""
    replicas: int = 0

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for ``-o json``."""
        return {
            "object": self.obj,
            "claims": self.claims,
            "statefulSet": self.statefulset,
            "notes": self.notes,
            "archive": self.archive,
            "replicas": self.replicas,
        }


def plan_backup(
    kube: Kube,
    name: str,
    namespace: str,
    *,
    backup_name: str | None = None,
    velero_namespace: str | None = None,
    ttl: str | None = None,
    storage_location: str | None = None,
    snapshot_volumes: bool | None = None,
) -> BackupPlan:
    """The Backup of cluster ``name``: flags first, then the cluster's ``spec.backup``, then Velero's defaults."""
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    from berth.kube.apply import stored_spec

    sts = kube.get_or_none(StatefulSet, name, namespace)
    applied = stored_spec(dict(sts.to_dict())) if sts is not None else None
    settings = applied.spec.backup if applied is not None else None
    notes: list[str] = []
    if sts is None:
        notes.append(
            f"no StatefulSet {name} in {namespace}: the backup holds only what still carries its labels (claims)"
        )
    # The same VolumeSnapshotClass choice as the cluster's Schedule (its annotation, not a global default).
    annotations = snapshot_class_annotations(applied) if applied is not None else {}
    claims = kube.call(
        f"list claims of {name} in {namespace}",
        lambda: list(kube.client.list(PersistentVolumeClaim, namespace=namespace, labels={LABEL_INSTANCE: name})),
    )
    claim_names = sorted(c.metadata.name for c in claims if c.metadata and c.metadata.name)
    if not claim_names:
        notes.append(f"no claim labelled {LABEL_INSTANCE}={name} in {namespace}: no volume will be backed up")
    velero_ns = velero_namespace or (settings.velero_namespace if settings else DEFAULT_VELERO_NAMESPACE)
    spec = backup_spec(
        name,
        namespace,
        ttl=ttl or (settings.ttl if settings else DEFAULT_TTL),
        snapshot_volumes=snapshot_volumes
        if snapshot_volumes is not None
        else (settings.snapshot_volumes if settings else True),
        storage_location=storage_location or (settings.storage_location if settings else None),
    )
    obj = backup_request(name, velero_ns, backup_name or timestamp_name(f"{namespace}-{name}"), spec, annotations)
    archive = applied.spec.archive.url if applied is not None and applied.spec.archive else None
    replicas = (sts.spec.replicas if sts is not None and sts.spec else None) or 0
    return BackupPlan(obj, claim_names, sts is not None, notes, archive, replicas)


def create(kube: Kube, obj: dict[str, Any]) -> Operation:
    """Create a Backup or Restore; an existing name is an error (Velero objects are one-shot requests)."""
    md = obj["metadata"]
    plural = f"{obj['kind'].lower()}s"
    # Strict: a field Velero's CRD does not define is an error, not silently pruned by the server.
    path = _path(md["namespace"], plural) + "?fieldValidation=Strict"
    created = _request(kube, "POST", path, f"create {object_ref(obj['kind'], md['name'], md['namespace'])}", obj)
    assert created is not None
    return Operation.from_object(created)


def get(kube: Kube, kind: str, name: str, velero_namespace: str) -> Operation | None:
    """The Backup or Restore ``name``, None when it does not exist."""
    found = _request(
        kube,
        "GET",
        _path(velero_namespace, f"{kind.lower()}s", name),
        f"read {object_ref(kind, name, velero_namespace)}",
        missing_ok=True,
    )
    return Operation.from_object(found) if found is not None else None


def wait(
    kube: Kube,
    kind: str,
    name: str,
    velero_namespace: str,
    *,
    timeout_s: float,
    progress: Callable[[Operation], None] | None = None,
) -> Operation:
    """Poll until Velero is done with it; ``progress`` hears each change of phase or item count."""
    deadline = time.monotonic() + timeout_s
    last: tuple[str, int | None, int | None] | None = None
    while True:
        op = get(kube, kind, name, velero_namespace)
        if op is None:
            raise BerthError(
                f"{object_ref(kind, name, velero_namespace)} disappeared while waiting for it",
                "someone deleted it (velero backup delete?); list what is left with `berth backups`",
            )
        key = (op.phase, op.items_done, op.items_total)
        if progress and key != last:
            progress(op)
        last = key
        if op.done:
            return op
        if time.monotonic() >= deadline:
            why = (
                "no Velero server has picked it up (its phase is still empty): is Velero's Deployment "
                f"running in namespace {velero_namespace}?"
                if not op.phase
                else f"Velero is still working on it ({op.summary()})"
            )
            raise BerthError(
                f"timed out after {timeout_s:.0f}s waiting for {object_ref(kind, name, velero_namespace)}: {why}",
                f"it goes on without berth; follow it with `velero {kind.lower()} describe {name}`",
            )
        time.sleep(POLL_S)


def list_backups(kube: Kube, name: str | None, namespace: str | None, velero_namespace: str) -> list[Operation]:
    """Backups of cluster ``name`` (made by berth or by its Schedule), oldest first.

    Listed by the instance label, then kept only when they cover ``namespace``: two clusters of
    the same name in different namespaces share the label value.
    """
    from urllib.parse import urlencode

    # Made by berth or by a Schedule berth rendered (Velero copies a Schedule's labels to its backups).
    selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}," + (f"{LABEL_INSTANCE}={name}" if name else LABEL_INSTANCE)
    query = "?" + urlencode({"labelSelector": selector})
    found = _request(kube, "GET", _path(velero_namespace, "backups") + query, f"list Backups in {velero_namespace}")
    assert found is not None
    ops = [Operation.from_object({"kind": "Backup", **item}) for item in found.get("items") or []]
    if namespace:
        ops = [op for op in ops if namespace in op.source_namespaces]
    return sorted(ops, key=lambda op: (op.started or "", op.name))


@dataclass
class RestorePlan:
    """The Restore berth would create, and why it must not run yet (``blockers``)."""

    obj: dict[str, Any]
    backup: Operation
    source: str
    target: str
    blockers: list[str]
    existing_claims: list[str]

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for ``-o json``."""
        return {
            "object": self.obj,
            "backup": self.backup.to_json(),
            "sourceNamespace": self.source,
            "targetNamespace": self.target,
            "blockers": self.blockers,
            "existingClaims": self.existing_claims,
        }


def plan_restore(
    kube: Kube,
    name: str,
    backup_name: str,
    target: str | None,
    velero_namespace: str,
    *,
    restore_name: str | None = None,
) -> RestorePlan:
    """Check the backup and the target namespace, and build the Restore (nothing is written).

    Refused (``blockers``): a backup that is not Completed/PartiallyFailed, one of another cluster,
    a running cluster in the target namespace, and claims of the cluster still there, because
    Velero skips every object that exists and the claims would keep their current data.
    """
    backup = get(kube, "Backup", backup_name, velero_namespace)
    if backup is None:
        raise BerthError(
            f"no Backup {backup_name} in namespace {velero_namespace}",
            f"list the backups of {name} with `berth backups {name}` (or pass --velero-namespace)",
        )
    if len(backup.source_namespaces) != 1:
        raise BerthError(
            f"Backup {backup_name} covers namespaces {backup.source_namespaces or ['(all)']}, not one cluster's",
            "restore it with `velero restore create` instead",
        )
    source = backup.source_namespaces[0]
    target_ns = target or source
    blockers: list[str] = []
    if backup.phase not in RESTORABLE:
        blockers.append(
            f"Backup {backup_name} is {backup.phase or 'not processed yet'}: only a Completed or "
            "PartiallyFailed backup holds data to restore"
        )
    if backup.cluster and backup.cluster != name:
        blockers.append(f"Backup {backup_name} is of cluster {backup.cluster}, not {name}")
    replicas, existing = what_is_there(kube, name, target_ns)
    if replicas is not None:
        blockers.append(
            f"cluster {name} is running in {target_ns} (StatefulSet, {replicas} replicas): Velero does not "
            f"replace existing objects; stop it first with `berth down {name} -n {target_ns} --yes` "
            "(its claims stay), or restore into another namespace with -n"
        )
    if existing:
        blockers.append(
            f"{len(existing)} claims of {name} still exist in {target_ns} ({', '.join(existing)}): Velero skips a "
            "claim that exists, so it would keep its current data, not the backup's; delete them with "
            f"`berth down {name} -n {target_ns} --delete-volumes --yes` (their data is lost), or restore "
            "into an empty namespace with -n"
        )
    obj = restore_request(
        name, velero_namespace, restore_name or timestamp_name(backup_name), backup_name, source, target_ns
    )
    return RestorePlan(obj, backup, source, target_ns, blockers, existing)


def what_is_there(kube: Kube, name: str, namespace: str) -> tuple[int | None, list[str]]:
    """The cluster's StatefulSet replicas (None when absent) and its claims still in ``namespace``.

    Claims count by the instance label or by the ``<template>-<name>-<ordinal>`` name, so claims a
    StatefulSet made before berth labelled its templates count too. Both restores refuse either.
    """
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    sts = kube.get_or_none(StatefulSet, name, namespace)
    replicas = None if sts is None else ((sts.spec.replicas if sts.spec else None) or 0)
    claims = kube.call(
        f"list claims in {namespace}", lambda: list(kube.client.list(PersistentVolumeClaim, namespace=namespace))
    )
    existing = sorted(
        c.metadata.name
        for c in claims
        if c.metadata
        and c.metadata.name
        and (
            (c.metadata.labels or {}).get(LABEL_INSTANCE) == name or parse_claim_name(c.metadata.name, name) is not None
        )
    )
    return replicas, existing
