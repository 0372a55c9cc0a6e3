"""The operator's delete finalizer takes a last Velero backup first (``spec.backup``): real API server.

Velero's Backup and Restore CRDs (tests/cluster/data/velero-crds.yaml, test_backup's ``velero``
fixture) are installed, so the API server validates the Backup the operator creates. Velero's
server cannot run here (its images need a registry), so this test plays Velero's controller: it
writes the Backup's ``status`` (Completed, Failed with a failureReason) the way Velero does.
The operator runs as a process on the sandbox's kubeconfig (kwok nodes), as in test_operator.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.contract import ANNOTATION_SKIP_FINAL_BACKUP, LABEL_INSTANCE

from .cluster_helpers import admin, claim_names, seed_like
from .test_backup import _http, _objects, _play_velero, velero  # noqa: F401  (velero: the fixture)
from .test_operator import eventually, get, operator  # noqa: F401  (operator: the fixture)
from .test_operator_crd import kubectl_run

pytestmark = pytest.mark.cluster


def _events(kubectl: Path, kubeconfig: Path, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """The CR's Events by reason (the latest of each)."""
    found = get(kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
    return {e["reason"]: e for e in (found or {}).get("items", [])}


def _condition(kubectl: Path, kubeconfig: Path, namespace: str, name: str, kind: str) -> dict[str, Any]:
    tc = get(kubectl, kubeconfig, "tc", name, "-n", namespace) or {}
    return next((c for c in (tc.get("status") or {}).get("conditions", []) if c["type"] == kind), {})


def test_delete_waits_for_the_last_backup(
    operator: Path,  # noqa: F811
    velero: str,  # noqa: F811  (the fixture imported above)
    kubectl: Path,
    kubeconfig: Path,
    namespace: str,
) -> None:
    """kept: Completed → deleted, claims kept; failing: Failed → stays Degraded until skipped; skipped: no backup."""
    http = _http(kubeconfig)
    for name in ("kept", "failing", "skipped"):
        doc = seed_like(
            namespace, name=name, replicas=2, backup={"schedule": "0 2 * * *", "ttl": "36h", "veleroNamespace": velero}
        )
        if name == "skipped":
            doc["metadata"]["annotations"] = {ANNOTATION_SKIP_FINAL_BACKUP: "true"}
        done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
        assert done.returncode == 0, done.stderr
    kube = admin(kubeconfig, namespace)
    for name in ("kept", "failing", "skipped"):
        eventually(lambda n=name: get(kubectl, kubeconfig, "statefulset", n, "-n", namespace), f"StatefulSet {name}")
    claims = eventually(
        lambda: {c for c in claim_names(kube, namespace) if c.endswith("-kept-0") or c.endswith("-kept-1")},
        "the claims of kept",
        60,
    )
    deleted = kubectl_run(
        kubectl, kubeconfig, "delete", "tc", "kept", "failing", "skipped", "-n", namespace, "--wait=false"
    )
    assert deleted.returncode == 0, deleted.stderr

    # One Backup each for the two without the annotation, named after the deletion; the CRs wait for them.
    def backups() -> dict[str, dict[str, Any]]:
        return {o["metadata"]["labels"][LABEL_INSTANCE]: o for o in _objects(http, velero, "backups")}

    made = eventually(lambda: len(b := backups()) == 2 and b, "two final Backups", 30)
    assert set(made) == {"kept", "failing"}, operator.read_text()[-3000:]
    kept = made["kept"]
    stamp = dt.datetime.strptime(kept["metadata"]["name"].rsplit("-", 1)[1], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    assert kept["metadata"]["name"].startswith(f"kept-{namespace}"[:40]) and "-final-" in kept["metadata"]["name"]
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60
    assert kept["spec"]["includedNamespaces"] == [namespace] and kept["spec"]["ttl"] == "36h"
    assert kept["spec"]["labelSelector"] == {"matchLabels": {LABEL_INSTANCE: "kept"}}
    # `skipped` went without one.
    eventually(lambda: get(kubectl, kubeconfig, "tc", "skipped", "-n", namespace) is None, "skipped deleted", 30)
    assert "FinalBackupSkipped" in _events(kubectl, kubeconfig, namespace, "skipped")

    # While Velero works, the CR and its StatefulSet stay; status and an Event name the Backup.
    progressing = eventually(
        lambda: (
            (c := _condition(kubectl, kubeconfig, namespace, "kept", "Progressing")).get("reason")
            in ("FinalBackupStarted", "FinalBackupInProgress")
            and c
        ),
        "Progressing names the final backup",
        30,
    )
    assert kept["metadata"]["name"] in progressing["message"]
    tc = get(kubectl, kubeconfig, "tc", "kept", "-n", namespace)
    assert tc and tc["metadata"].get("deletionTimestamp") and tc["status"]["phase"] == "Deleting"
    assert get(kubectl, kubeconfig, "statefulset", "kept", "-n", namespace)
    assert kept["metadata"]["name"] in _events(kubectl, kubeconfig, namespace, "kept")["FinalBackupStarted"]["message"]

    # No verdict within the timeout (the finalizer's step, as seen 601 s after the deletion): it says
    # Velero never picked the Backup up, and keeps the CR.
    from berth.operator.reconcile import final_backup

    body = get(kubectl, kubeconfig, "tc", "failing", "-n", namespace)
    assert body is not None
    later = dt.datetime.fromisoformat(body["metadata"]["deletionTimestamp"]) + dt.timedelta(seconds=601)
    late = final_backup(kube, body, timeout_s=600, now=later)
    assert (late.proceed, late.reason, late.warning, late.retry_s) == (False, "FinalBackupTimedOut", True, 30.0)
    assert "no Velero server has picked it up" in late.message and ANNOTATION_SKIP_FINAL_BACKUP in late.message

    # Velero (played) completes it: the delete goes on, the claims stay (whenDeleted: Retain).
    _play_velero(http, velero, "backups", kept["metadata"]["name"], {"phase": "Completed"})
    eventually(lambda: get(kubectl, kubeconfig, "tc", "kept", "-n", namespace) is None, "kept deleted", 30)
    assert get(kubectl, kubeconfig, "statefulset", "kept", "-n", namespace) is None
    assert claim_names(kube, namespace) >= claims
    assert "FinalBackupCompleted" in _events(kubectl, kubeconfig, namespace, "kept")

    # Velero (played) fails the other: it stays, Degraded with Velero's reason and what to do, a Warning.
    reason = 'error getting backup storage location: BackupStorageLocation.velero.io "default" not found'
    _play_velero(
        http, velero, "backups", made["failing"]["metadata"]["name"], {"phase": "Failed", "failureReason": reason}
    )
    degraded = eventually(
        lambda: (c := _condition(kubectl, kubeconfig, namespace, "failing", "Degraded")).get("status") == "True" and c,
        "failing Degraded",
        30,
    )
    assert degraded["reason"] == "FinalBackupFailed" and reason in degraded["message"], degraded
    assert ANNOTATION_SKIP_FINAL_BACKUP in degraded["message"]
    warning = _events(kubectl, kubeconfig, namespace, "failing")["FinalBackupFailed"]
    assert warning["type"] == "Warning" and reason in warning["message"]
    assert get(kubectl, kubeconfig, "statefulset", "failing", "-n", namespace)
    assert get(kubectl, kubeconfig, "tc", "failing", "-n", namespace)

    # The annotation the message names lets it go, without another Backup.
    annotated = kubectl_run(
        kubectl, kubeconfig, "annotate", "tc", "failing", "-n", namespace, f"{ANNOTATION_SKIP_FINAL_BACKUP}=true"
    )
    assert annotated.returncode == 0, annotated.stderr
    eventually(lambda: get(kubectl, kubeconfig, "tc", "failing", "-n", namespace) is None, "failing deleted", 30)
    assert set(backups()) == {"kept", "failing"} and len(_objects(http, velero, "backups")) == 2
    # One Warning for the failure however often the finalizer looked again.
    found = get(kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", "involvedObject.name=failing")
    assert [e["reason"] for e in (found or {})["items"]].count("FinalBackupFailed") == 1
