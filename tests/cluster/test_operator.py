"""`berth operator run` against the real control plane (kwok nodes): create, drift, scale, bad CR, delete.

The operator runs as a child process on the sandbox's kubeconfig, watching only the test's
namespace, with a 2 s resync so drift is corrected within the test's patience.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.contract import ANNOTATION_SKIP_FINAL_BACKUP, FIELD_MANAGER

from ..conftest import BERTH
from .cluster_helpers import admin, claim_names, seed_like
from .test_operator_crd import install_crd, kubectl_run

pytestmark = pytest.mark.cluster


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get(kubectl: Path, kubeconfig: Path, *args: str) -> dict[str, Any] | None:
    done = kubectl_run(kubectl, kubeconfig, "get", *args, "-o", "json")
    return json.loads(done.stdout) if done.returncode == 0 else None


def wait_sts_replicas(kubectl: Path, kubeconfig: Path, namespace: str, name: str, replicas: int, what: str) -> None:
    """Until StatefulSet ``name`` asks for ``replicas`` pods."""
    eventually(
        lambda: (
            ((get(kubectl, kubeconfig, "statefulset", name, "-n", namespace) or {}).get("spec") or {}).get("replicas")
            == replicas
        ),
        what,
        30,
    )


def start_operator(kubeconfig: Path, namespace: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*BERTH, "operator", "run", "--kubeconfig", str(kubeconfig), "-n", namespace, "--resync", "2", *extra],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def operator(kubectl: Path, kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[Path]:
    install_crd(kubectl, kubeconfig)
    log = tmp_path / "operator.log"
    proc = start_operator(kubeconfig, namespace, log, "--standalone")
    try:
        yield log
    finally:
        # While the operator still runs, so its finalizer lets the CRs (and the namespace) go; whatever a
        # failed test left waiting for its last backup (test_operator_backup.py) goes without one.
        kubectl_run(
            kubectl, kubeconfig, "annotate", "tc", "--all", "-n", namespace, "--overwrite",
            f"{ANNOTATION_SKIP_FINAL_BACKUP}=true",
        )  # fmt: skip
        kubectl_run(kubectl, kubeconfig, "delete", "tc", "--all", "-n", namespace, "--timeout=60s")
        stop(proc)


def test_operator_reconciles_corrects_scales_and_keeps_claims(
    operator: Path, kubectl: Path, kubeconfig: Path, namespace: str
) -> None:
    doc = seed_like(namespace, name="op", replicas=3)
    created = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert created.returncode == 0, created.stderr

    # The same objects `berth up` renders appear, applied by field manager berth.
    sts = eventually(
        lambda: get(kubectl, kubeconfig, "statefulset", "op", "-n", namespace, "--show-managed-fields"),
        "the StatefulSet",
        90,
    )
    managers = {m["manager"] for m in sts["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert managers == {FIELD_MANAGER}, operator.read_text()[-3000:]
    assert sts["spec"]["replicas"] == 3

    def status() -> dict[str, Any]:
        tc = get(kubectl, kubeconfig, "tc", "op", "-n", namespace) or {}
        return dict(tc.get("status") or {})

    first = eventually(lambda: (s := status()).get("observedGeneration") == 1 and s, "status", 60)
    assert {c["type"] for c in first["conditions"]} == {"Ready", "Progressing", "Degraded", "Succeeded", "Failed"}
    assert first["selector"] == "app.kubernetes.io/instance=op,app.kubernetes.io/managed-by=berth"
    assert first["phase"] in ("Progressing", "Ready")
    # What `berth up` renders from the same spec, all applied (the CRDs of Velero/Prometheus are absent here).
    from berth.kube.apply import desired_objects
    from berth.operator.reconcile import spec_from_cr

    for obj in desired_objects(spec_from_cr(doc)):
        if obj["kind"] in (
            "ServiceAccount",
            "Service",
            "StatefulSet",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ConfigMap",
        ):
            found = get(kubectl, kubeconfig, obj["kind"].lower(), obj["metadata"]["name"], "-n", namespace)
            assert found, f"{obj['kind']} {obj['metadata']['name']} missing"

    # Someone edits the StatefulSet by hand: set back, reported in status and as an Event.
    edited = kubectl_run(
        kubectl, kubeconfig, "patch", "statefulset", "op", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"replicas": 1}}',
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    wait_sts_replicas(kubectl, kubeconfig, namespace, "op", 3, "the hand edit reverted")

    def drift_event() -> bool:
        events = get(kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", "involvedObject.name=op")
        return any(e.get("reason") == "DriftCorrected" for e in (events or {}).get("items", []))

    eventually(drift_event, "a DriftCorrected Event", 30)

    # kubectl scale on the CR: the scale subresource changes spec.replicas, the StatefulSet follows.
    scaled = kubectl_run(kubectl, kubeconfig, "scale", "tc/op", "-n", namespace, "--replicas", "5")
    assert scaled.returncode == 0, scaled.stderr
    wait_sts_replicas(kubectl, kubeconfig, namespace, "op", 5, "the StatefulSet scaled to 5")
    eventually(lambda: status().get("observedGeneration") == 2 and status().get("replicas") == 5, "status", 30)
    table = kubectl_run(kubectl, kubeconfig, "get", "tc", "-n", namespace)
    assert table.stdout.split("\n")[1].split()[3] == "5", table.stdout

    # Delete: the finalizer removes what berth rendered and keeps the claims (whenDeleted: Retain).
    kube = admin(kubeconfig, namespace)
    claims = eventually(lambda: claim_names(kube, namespace), "claims from the StatefulSet", 60)
    deleted = kubectl_run(kubectl, kubeconfig, "delete", "tc", "op", "-n", namespace, "--timeout=60s")
    assert deleted.returncode == 0, deleted.stderr
    assert get(kubectl, kubeconfig, "tc", "op", "-n", namespace) is None
    eventually(lambda: get(kubectl, kubeconfig, "statefulset", "op", "-n", namespace) is None, "StatefulSet gone", 30)
    assert claim_names(kube, namespace) >= claims
    # spec.backup is set but Velero is not installed: no last backup, and a Warning saying why.
    events = get(kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", "involvedObject.name=op") or {}
    skipped = [e for e in events.get("items", []) if e.get("reason") == "FinalBackupSkipped"]
    assert skipped and skipped[0]["type"] == "Warning" and "Velero is not installed" in skipped[0]["message"]


def test_clusters_sharing_a_namespace_settle_and_a_delete_during_a_resync_is_quick(
    kubectl: Path, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """Five CRs in one namespace: no drift fight over the Namespace; deletes within seconds.

    Every cluster applies the same Namespace object; with per-cluster labels on it, each resync
    rewrote the others' and every CR reported ``DriftCorrected`` forever.

    A delete that lands while the CR's resync runs: the finalizer goes within seconds.
    kopf removes the finalizer only after the object's running timer has ended, and checks again
    every ``cancellation_polling`` seconds, 60 by default: such a ``kubectl delete`` hung a minute
    (a CI run failed on it). With a 0.2 s resync the timer runs most of the time, so a delete
    lands in one; the debug log proves it did.
    """
    from berth.operator.controller import DELETE_POLL_S

    install_crd(kubectl, kubeconfig)
    log = tmp_path / "operator.log"
    proc = start_operator(kubeconfig, namespace, log, "--standalone", "--resync", "0.2", "--verbose")
    names = [f"rs{i}" for i in range(5)]
    waiting = "resync' is still exiting"
    took: dict[str, float] = {}
    try:
        for name in names:
            doc = seed_like(namespace, name=name, replicas=1, serviceName=f"{name}-training")
            created = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
            assert created.returncode == 0, created.stderr
        for name in names:
            eventually(
                lambda name=name: (
                    ((get(kubectl, kubeconfig, "tc", name, "-n", namespace) or {}).get("status") or {}).get(
                        "observedGeneration"
                    )
                    == 1
                ),
                f"{name} reconciled",
                60,
            )
        time.sleep(2)  # ten resyncs of each
        events = get(kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", "reason=DriftCorrected")
        assert not (events or {}).get("items"), [e["message"] for e in (events or {}).get("items", [])][:5]
        for name in names:  # until one delete has met a running resync
            started = time.monotonic()
            deleted = kubectl_run(kubectl, kubeconfig, "delete", "tc", name, "-n", namespace, "--timeout=60s")
            took[name] = round(time.monotonic() - started, 1)
            assert deleted.returncode == 0, deleted.stderr
            if waiting in log.read_text(errors="replace"):
                break
        text = log.read_text(errors="replace")
        assert waiting in text, f"no delete met a running resync, the case went untested: {took}"
        assert f"The next check is in {DELETE_POLL_S} seconds" in text
        assert max(took.values()) < 20, took
    finally:
        kubectl_run(kubectl, kubeconfig, "delete", "tc", "--all", "-n", namespace, "--timeout=60s")
        stop(proc)


def test_bad_cr_is_degraded_and_others_keep_reconciling(
    operator: Path, kubectl: Path, kubeconfig: Path, namespace: str
) -> None:
    # A size the schema lets through (a string) but the model rejects: only the controller can tell.
    bad = seed_like(namespace, name="bad", replicas=1)
    bad["spec"]["volumes"]["model-storage"]["size"] = "lots"
    good = seed_like(namespace, name="good", replicas=1)
    for doc in (bad, good):
        done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
        assert done.returncode == 0, done.stderr

    def degraded() -> dict[str, Any] | None:
        tc = get(kubectl, kubeconfig, "tc", "bad", "-n", namespace) or {}
        conds = {c["type"]: c for c in (tc.get("status") or {}).get("conditions", [])}
        cond = conds.get("Degraded")
        return cond if cond and cond["status"] == "True" else None

    cond = eventually(degraded, "a Degraded condition on the bad CR", 60)
    assert cond["reason"] == "InvalidSpec"
    assert "spec.volumes.model-storage.size" in cond["message"], cond
    eventually(lambda: get(kubectl, kubeconfig, "statefulset", "good", "-n", namespace), "the good CR's StatefulSet")
    assert get(kubectl, kubeconfig, "statefulset", "bad", "-n", namespace) is None
