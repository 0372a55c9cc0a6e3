"""The operator SIGKILLed mid-reconcile and started again converges: no duplicate work, no lost status.

Three TrainingClusters are applied at once and the operator is killed as soon as the first StatefulSet
exists, so the others are half done or not started. A fresh operator process must bring all three to
their first generation's status, keep the StatefulSets the first one made (same uid, generation 1: not
re-created, not rewritten) and leave berth as the only applier.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.contract import ANNOTATION_SKIP_FINAL_BACKUP, FIELD_MANAGER

from .cluster_helpers import seed_like
from .test_operator import eventually, get, start_operator, stop
from .test_operator_crd import install_crd, kubectl_run

pytestmark = pytest.mark.cluster

NAMES = ("r0", "r1", "r2")


def test_sigkill_mid_reconcile_then_restart_converges_without_duplicate_work(
    kubectl: Path, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    install_crd(kubectl, kubeconfig)
    first = start_operator(kubeconfig, namespace, tmp_path / "first.log", "--standalone")
    second = None
    try:
        docs = "---\n".join(yaml.safe_dump(seed_like(namespace, name=n, replicas=2)) for n in NAMES)
        applied = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=docs)
        assert applied.returncode == 0, applied.stderr

        def some_statefulset() -> list[str]:
            listed = get(kubectl, kubeconfig, "statefulsets", "-n", namespace) or {}
            return [s["metadata"]["name"] for s in listed.get("items", [])]

        eventually(some_statefulset, "the first StatefulSet", 90)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = {
            s["metadata"]["name"]: s["metadata"]["uid"]
            for s in (get(kubectl, kubeconfig, "statefulsets", "-n", namespace) or {}).get("items", [])
        }
        assert before, "the operator was killed before it made anything"

        second = start_operator(kubeconfig, namespace, tmp_path / "second.log", "--standalone")

        def converged() -> dict[str, dict[str, Any]] | None:
            out = {}
            for name in NAMES:
                status = (get(kubectl, kubeconfig, "tc", name, "-n", namespace) or {}).get("status") or {}
                if status.get("observedGeneration") != 1 or status.get("phase") not in ("Progressing", "Ready"):
                    return None
                out[name] = status
            return out

        statuses = eventually(converged, "every TrainingCluster's status after the restart", 120)
        for name, status in statuses.items():
            assert {c["type"] for c in status["conditions"]} == {
                "Ready",
                "Progressing",
                "Degraded",
                "Succeeded",
                "Failed",
            }, name
            sts = get(kubectl, kubeconfig, "statefulset", name, "-n", namespace, "--show-managed-fields")
            assert sts is not None, f"StatefulSet {name} missing"
            assert sts["spec"]["replicas"] == 2
            assert sts["metadata"]["generation"] == 1, f"{name} was rewritten: {sts['metadata']['generation']}"
            appliers = {m["manager"] for m in sts["metadata"]["managedFields"] if m["operation"] == "Apply"}
            assert appliers == {FIELD_MANAGER}
            if name in before:
                assert sts["metadata"]["uid"] == before[name], f"{name} was re-created after the restart"
        listed = get(kubectl, kubeconfig, "statefulsets", "-n", namespace) or {}
        assert sorted(s["metadata"]["name"] for s in listed.get("items", [])) == sorted(NAMES)  # one each
    finally:
        if second is not None:  # its finalizer lets the CRs (and the namespace) go
            kubectl_run(
                kubectl, kubeconfig, "annotate", "tc", "--all", "-n", namespace, "--overwrite",
                f"{ANNOTATION_SKIP_FINAL_BACKUP}=true",
            )  # fmt: skip
            kubectl_run(kubectl, kubeconfig, "delete", "tc", "--all", "-n", namespace, "--timeout=60s")
            stop(second)
        stop(first)
