"""The operator process: kopf handlers around :mod:`berth.operator.reconcile`.

kopf brings what a hand-rolled watch loop lacks: list+watch with resumption, per-object
serialisation, retries with back-off (``backoff=``), a resync timer, finalizers for ``on.delete``,
Events. Leader election is a Lease (:mod:`berth.operator.leader`): kopf runs only in the replica
holding it. Imported only by ``berth operator run``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import kopf

from berth.contract import API_GROUP
from berth.kube.client import Kube
from berth.operator.crd import PLURAL, VERSION
from berth.operator.leader import LeaseElector
from berth.operator.reconcile import (
    FINAL_BACKUP_TIMEOUT_S,
    delete_volumes,
    deleting_status,
    final_backup,
    reconcile,
    status_of,
    write_status,
)

PREFIX = f"operator.{API_GROUP}"
FINALIZER = f"{PREFIX}/finalizer"
DELETE_POLL_S = 1.0  # how often a pending delete checks whether the running resync has ended
LOST_LEADERSHIP = 3  # exit code: the Lease could not be kept (docs/operator.md)


def _plain(value: Any) -> Any:
    """kopf's body views as plain JSON data (what the spec loader takes)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def make_registry(
    kube: Kube, *, resync_s: float, workers: int = 4, final_backup_timeout_s: float = FINAL_BACKUP_TIMEOUT_S
) -> kopf.OperatorRegistry:
    """All handlers, bound to ``kube`` (the one apply path: ``berth.kube.up``)."""
    registry = kopf.OperatorRegistry()
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def lock_for(uid: str) -> threading.Lock:
        with guard:
            return locks.setdefault(uid, threading.Lock())

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Progress and the last handled spec live in annotations: the structural status schema
        # would prune kopf's status.kopf, and status belongs to the TrainingCluster's readers.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
        settings.persistence.finalizer = FINALIZER
        settings.posting.level = logging.INFO
        settings.execution.max_workers = workers
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # A delete that lands while a resync runs waits for that run to end before the finalizer
        # goes; kopf looks again only every `cancellation_polling` s (60 by default), so a
        # `kubectl delete` would hang a minute. A resync takes about a second: look each second.
        settings.background.cancellation_polling = DELETE_POLL_S

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    def run(body: kopf.Body, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        raw: dict[str, Any] = _plain(body)
        meta = raw.get("metadata") or {}
        with lock_for(str(meta.get("uid"))):
            outcome = reconcile(kube, raw)
            status = status_of(raw, outcome)
            write_status(kube, str(meta.get("name")), str(meta.get("namespace")), status)
        before = {c.get("type"): c for c in (raw.get("status") or {}).get("conditions") or []}
        if outcome.error is not None:
            old = before.get("Degraded") or {}
            if old.get("message") != outcome.error or old.get("status") != "True":
                kopf.warn(body, reason=outcome.reason, message=outcome.error)
            logger.warning("%s: %s", outcome.reason, outcome.error)
            if outcome.reason == "ApplyFailed":
                raise kopf.TemporaryError(outcome.error, delay=10)
            return
        if outcome.resized:
            kopf.info(body, reason="VolumesResized", message="; ".join(outcome.resized)[:1000])
        for fixed in outcome.corrected:
            kopf.warn(body, reason="DriftCorrected", message=f"set back to the spec: {fixed}")
        changed = [r.ref for r in outcome.results if r.action in ("create", "update")]
        if changed and not outcome.corrected:
            kopf.info(body, reason="Applied", message=f"{len(changed)} objects applied: {', '.join(changed)[:900]}")

    @kopf.on.resume(API_GROUP, VERSION, PLURAL, registry=registry, backoff=5)
    @kopf.on.create(API_GROUP, VERSION, PLURAL, registry=registry, backoff=5)
    @kopf.on.update(API_GROUP, VERSION, PLURAL, field="spec", registry=registry, backoff=5)
    def reconcile_handler(**kwargs: Any) -> None:
        run(kwargs["body"], kwargs["logger"])

    @kopf.timer(API_GROUP, VERSION, PLURAL, registry=registry, interval=resync_s, initial_delay=resync_s, idle=None)
    def resync(**kwargs: Any) -> None:
        # Drift of owned objects (a hand-edited StatefulSet) and status both converge on this tick.
        run(kwargs["body"], kwargs["logger"])

    @kopf.on.delete(API_GROUP, VERSION, PLURAL, registry=registry, backoff=5)
    def remove(**kwargs: Any) -> None:
        from berth.kube.down import down

        body, name, namespace, logger = kwargs["body"], kwargs["name"], kwargs["namespace"], kwargs["logger"]
        raw: dict[str, Any] = _plain(body)
        # The last backup first (spec.backup): one look per call; while Velero works, a kopf retry
        # comes back later, so no worker is held and the operator's other CRs go on.
        step = final_backup(kube, raw, timeout_s=final_backup_timeout_s)
        before = {c.get("type"): c for c in (raw.get("status") or {}).get("conditions") or []}
        said = before.get("Degraded" if step.warning else "Progressing") or {}
        if said.get("reason") != step.reason and step.reason not in ("NoBackupConfigured", "FinalBackupInProgress"):
            (kopf.warn if step.warning else kopf.info)(body, reason=step.reason, message=step.message[:1000])
        if not step.proceed:
            write_status(kube, name, namespace, deleting_status(raw, step))
            logger.info("%s: %s", step.reason, step.message)
            raise kopf.TemporaryError(step.message, delay=step.retry_s)
        drop = delete_volumes(raw)
        removals = down(kube, name, namespace, delete_volumes=drop, yes=True)
        kept = [r.name for r in removals if not r.deleted]
        logger.info("deleted %s; kept %s", [r.name for r in removals if r.deleted], kept)

    return registry


def _standby_health(liveness: str | None) -> Any:
    """While standing by, answer the liveness probe kopf will answer once leading (else: restarts)."""
    if not liveness:
        return None
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlparse

    url = urlparse(liveness)

    class Alive(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == (url.path or "/") else 404)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), Alive)
    threading.Thread(target=server.serve_forever, name="standby-health", daemon=True).start()
    return server


def run_operator(
    kube: Kube,
    *,
    namespaces: list[str],
    resync_s: float,
    elector: LeaseElector | None,
    liveness: str | None,
    verbose: bool = False,
) -> None:
    """Block running the operator until SIGINT/SIGTERM; with ``elector``, only while leading.

    A candidate first waits for the Lease (answering the liveness probe meanwhile), then runs kopf
    standalone — the Lease, not kopf's peering, decides who acts. Leadership lost (not renewed in
    time, or taken) ends the process at once with exit code 3: it must not act beside a new
    leader, and its Deployment restarts it as a candidate.
    """
    # INFO to stderr: handlers, retries, leadership; DEBUG adds every patch and handling cycle.
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    registry = make_registry(kube, resync_s=resync_s)
    stop_renewing: threading.Event | None = None
    if elector is not None:
        server = _standby_health(liveness)
        elector.acquire()
        if server is not None:
            server.shutdown()
            server.server_close()

        def lost(reason: str) -> None:
            logging.getLogger("berth.operator").error("leadership lost (%s): exiting", reason)
            logging.shutdown()
            os._exit(LOST_LEADERSHIP)

        stop_renewing = elector.keep(lost)
    try:
        kopf.run(
            registry=registry,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=liveness,
        )
    finally:
        # The reconciler's own requests (apply, status snapshot, status patch); kopf's watch is extra.
        logging.getLogger("berth.operator").info("reconciler API requests: %d", kube.requests)
        if elector is not None and stop_renewing is not None:
            stop_renewing.set()
            elector.release()
