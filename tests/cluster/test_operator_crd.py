"""The generated CRD on the real API server: accepted, printer columns, scale subresource, CEL rules."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.operator import crd

from .cluster_helpers import seed_like

pytestmark = pytest.mark.cluster


def kubectl_run(
    kubectl: Path, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def install_crd(kubectl: Path, kubeconfig: Path) -> None:
    done = kubectl_run(kubectl, kubeconfig, "apply", "--server-side", "-f", str(crd.COMMITTED))
    assert done.returncode == 0, done.stderr
    # Not `kubectl wait`: on a CRD created a moment ago it fails when status.conditions is still null.
    deadline = time.monotonic() + 60
    while True:
        got = kubectl_run(kubectl, kubeconfig, "get", f"crd/{crd.CRD_NAME}", "-o", "json")
        conditions = (json.loads(got.stdout).get("status") or {}).get("conditions") if got.returncode == 0 else None
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions or []):
            return
        assert time.monotonic() < deadline, f"CRD not Established after 60s: {got.stdout[-2000:]} {got.stderr}"
        time.sleep(0.2)


def test_crd_serves_trainingclusters(kubectl: Path, kubeconfig: Path, namespace: str) -> None:
    install_crd(kubectl, kubeconfig)
    doc = seed_like(namespace, name="crd-ok", replicas=3)
    done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode == 0, done.stderr

    table = kubectl_run(kubectl, kubeconfig, "get", "tc", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[0].split() == ["NAME", "PHASE", "READY", "REPLICAS", "AGE"]
    assert table.stdout.split("\n")[1].split()[:2] == ["crd-ok", "3"]  # no status yet: phase and ready empty

    scaled = kubectl_run(kubectl, kubeconfig, "scale", "trainingcluster/crd-ok", "-n", namespace, "--replicas", "5")
    assert scaled.returncode == 0, scaled.stderr
    got = kubectl_run(kubectl, kubeconfig, "get", "tc", "crd-ok", "-n", namespace, "-o", "json")
    body: dict[str, Any] = json.loads(got.stdout)
    assert body["spec"]["replicas"] == 5
    # Every field round-trips: nothing the model takes is pruned by the structural schema.
    assert body["spec"] == {**doc["spec"], "replicas": 5}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"disruption": {"minAvailable": 1, "maxUnavailable": 1}}, "set minAvailable or maxUnavailable, not both"),
        ({"scheduling": {"queue": {}}}, "set exactly one of kueue, volcano"),
        (
            {"volumes": {"data": {"mountPath": "/data", "size": "1Gi", "storageClass": "nope"}}},
            "unknown storage class",
        ),
        ({"monitoring": {"prometheus": False, "podMonitor": True}}, "need the metrics port of prometheus: true"),
        ({"replicas": 0}, "spec.replicas: Invalid value: 0"),
        ({"framework": "caffe"}, 'spec.framework: Unsupported value: "caffe"'),
        ({"resources": {"requests": {"cpu": True}}}, "spec.resources.requests.cpu"),
    ],
)
def test_bad_cr_rejected_with_the_rule_message(
    kubectl: Path, kubeconfig: Path, namespace: str, change: dict[str, Any], message: str
) -> None:
    install_crd(kubectl, kubeconfig)
    doc = seed_like(namespace, name="crd-bad", **change)
    done = kubectl_run(kubectl, kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_name_longer_than_52_rejected(kubectl: Path, kubeconfig: Path, namespace: str) -> None:
    install_crd(kubectl, kubeconfig)
    doc = seed_like(namespace, name="n" * 53)
    done = kubectl_run(kubectl, kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0
    assert "metadata.name must be at most 52 characters" in done.stderr, done.stderr
