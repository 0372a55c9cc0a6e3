"""The API half of the lifecycle against the real control plane (kwok nodes run the pods' objects).

The supervisors are local processes with the rendered container's command and env
(tests/runtime/lifecycle_harness.py) and the API access a pod gets: a token of the pod's
ServiceAccount from the TokenRequest API, the cluster's CA, so the Role berth renders is what
allows (or refuses) every call. Until the sandbox has a kubelet node, this is the closest to a pod.
"""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.sandbox import SandboxState
from tests.runtime.conftest import free_port
from tests.runtime.lifecycle_harness import LocalGang, spec, spec_doc

from .cluster_helpers import berth, write_spec

pytestmark = pytest.mark.cluster

FAST = {"backoffSeconds": 0, "stopGraceSeconds": 2}


def _api_env(sandbox: SandboxState, kube_client: Any, namespace: str, directory: Path) -> dict[str, str]:
    """What the kubelet mounts into the pod, as files: a token of the pod's ServiceAccount and the CA."""
    from lightkube.models.authentication_v1 import TokenRequestSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ServiceAccount

    token = kube_client.create(
        ServiceAccount.Token(
            metadata=ObjectMeta(name="demo", namespace=namespace),
            spec=TokenRequestSpec(audiences=[], expirationSeconds=3600),
        ),
        name="demo",
        namespace=namespace,
    )
    (directory / "token").write_text(token.status.token)
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    (directory / "ca.crt").write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    return {
        "BERTH_API_SERVER": sandbox.server,
        "BERTH_API_TOKEN_FILE": str(directory / "token"),
        "BERTH_API_CA_FILE": str(directory / "ca.crt"),
    }


@pytest.fixture
def deployed(
    sandbox: SandboxState, kube_client: Any, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., LocalGang]]:
    gangs: list[LocalGang] = []

    def deploy(lifecycle: dict[str, Any], grace: int = 30, **test_env: str) -> LocalGang:
        doc = spec_doc("demo", 3, {**FAST, **lifecycle}, namespace, terminationGracePeriodSeconds=grace)
        result = berth("up", str(write_spec(tmp_path, doc)), "--timeout", "120", kubeconfig=sandbox.kubeconfig)
        assert result.returncode == 0, result.stderr
        api = _api_env(sandbox, kube_client, namespace, tmp_path)
        from lightkube.resources.apps_v1 import StatefulSet

        revision = kube_client.get(StatefulSet, "demo", namespace=namespace).status.updateRevision
        cluster = spec("demo", 3, {**FAST, **lifecycle}, namespace, terminationGracePeriodSeconds=grace)
        gang = LocalGang(tmp_path / "pods", cluster, free_port(), {**api, **test_env}, revision)
        gangs.append(gang)
        return gang

    yield deploy
    for gang in gangs:
        gang.stop()


def _status(sandbox: SandboxState, namespace: str) -> dict[str, Any]:
    result = berth("status", "demo", "-n", namespace, "-o", "json", kubeconfig=sandbox.kubeconfig)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _until(what: Callable[[], Any], timeout: float, gang: LocalGang | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"timed out\n{gang.logs() if gang else ''}"
        time.sleep(0.5)
    return value


def test_completion_scales_to_zero_keeps_claims_and_status_says_succeeded(
    deployed: Callable[..., LocalGang], sandbox: SandboxState, namespace: str
) -> None:
    gang = deployed({}, TEST_STEPS="20", TEST_STEP_S="0.02")
    waited = berth(
        "wait", "demo", "-n", namespace, "--for", "complete", "--timeout", "2", kubeconfig=sandbox.kubeconfig
    )
    assert waited.returncode == 2, waited.stdout + waited.stderr  # nothing runs yet: a timeout
    gang.start_all()
    running = _until(lambda: (s := _status(sandbox, namespace))["run"]["phase"] != "Pending" and s, 60, gang)
    assert running["run"]["phase"] in ("Starting", "Running", "Succeeded"), running["run"]
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 60)
    status = _until(lambda: (s := _status(sandbox, namespace))["replicas"] == 0 and s, 30)
    assert status["run"]["phase"] == "Succeeded" and status["run"]["restarts"] == 0
    assert status["apiRequests"] <= 4
    assert len(status["claims"]) == 3, status["claims"]  # released compute, kept the volumes
    waited = berth("wait", "demo", "-n", namespace, "--for", "complete", "-o", "json", kubeconfig=sandbox.kubeconfig)
    assert waited.returncode == 0 and json.loads(waited.stdout)["result"] == "Succeeded"
    for rank in range(3):
        assert "cannot patch" not in (gang.root / f"pod-{rank}.log").read_text()


def test_failed_run_names_rank_exit_code_and_last_line(
    deployed: Callable[..., LocalGang], sandbox: SandboxState, namespace: str
) -> None:
    gang = deployed(
        {"onComplete": "idle", "maxRestarts": 1}, TEST_STEPS="20", TEST_STEP_S="0.02", TEST_FAIL="1:3:always"
    )
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Failed", 60)

    def published() -> dict[str, Any] | None:
        s = _status(sandbox, namespace)
        ranks = {p["ordinal"]: p["run"] for p in s["pods"]}
        return s if s["run"]["phase"] == "Failed" and (ranks.get(1) or {}).get("exitCode") == 1 else None

    status = _until(published, 30)
    run = status["run"]
    assert (run["failedRank"], run["exitCode"], run["lastLine"], run["failures"]) == (1, 1, "boom at step 3", 2)
    rank1 = next(p["run"] for p in status["pods"] if p["ordinal"] == 1)
    assert rank1["phase"] == "Failed" and rank1["lastLine"] == "boom at step 3" and rank1["restarts"] == 1
    assert status["replicas"] == 3  # onComplete: idle
    text = berth("status", "demo", "-n", namespace, kubeconfig=sandbox.kubeconfig).stdout
    assert "run Failed" in text and "rank 1 exited 1: boom at step 3" in text
    waited = berth("wait", "demo", "-n", namespace, "--for", "complete", kubeconfig=sandbox.kubeconfig)
    assert waited.returncode == 1 and "Failed: rank 1 exited 1" in waited.stdout


def test_a_slow_final_save_is_published_and_doctor_says_the_grace_period_is_tight(
    deployed: Callable[..., LocalGang], sandbox: SandboxState, namespace: str
) -> None:
    """Rank 1's pod is deleted (SIGTERM) and its final save takes 17 s of its 30 s grace period (the
    least a spec may set): its supervisor publishes the measured stop on its pod, status shows it next
    to the pod's grace period, and doctor warns before a slower save gets SIGKILLed mid-write."""
    gang = deployed({"onComplete": "idle"}, grace=30, TEST_STEPS="800", TEST_STEP_S="0.05", TEST_STOP_S="17")
    gang.start_all()
    gang.wait_for(lambda: any(e["ev"] == "start" and e["rank"] == 1 for e in gang.events()), 60)
    time.sleep(0.5)
    os.kill(gang.procs[1].pid, signal.SIGTERM)  # the kubelet's stop of a deleted pod
    assert gang.procs[1].wait(timeout=40) == 143, gang.logs()

    def published() -> dict[str, Any] | None:
        pods = {p["ordinal"]: p for p in _status(sandbox, namespace)["pods"]}
        return pods[1] if ((pods.get(1) or {}).get("run") or {}).get("lastStopSeconds") else None

    pod = _until(published, 30, gang)
    assert 17 <= pod["run"]["lastStopSeconds"] < 25 and pod["terminationGracePeriodSeconds"] == 30, pod
    doctor = berth("doctor", "demo", "-n", namespace, "-o", "json", kubeconfig=sandbox.kubeconfig)
    findings = [f for f in json.loads(doctor.stdout)["findings"] if f["code"] == "grace-period-tight"]
    assert [(f["severity"], f["object"]) for f in findings] == [("warning", "pod/demo-1")], doctor.stdout
    took = pod["run"]["lastStopSeconds"]
    assert f"at least {math.ceil(2 * took) + 5}" in findings[0]["fix"], findings
    text = berth("status", "demo", "-n", namespace, kubeconfig=sandbox.kubeconfig).stdout
    row = next(line for line in text.splitlines() if " demo-1 " in line)
    assert "last stop" in text and f"{took:.0f}s of 30s" in row, text


def test_missing_rbac_is_said_once_per_verb_and_resource_and_training_goes_on(
    deployed: Callable[..., LocalGang], kube_client: Any, sandbox: SandboxState, namespace: str
) -> None:
    from lightkube.resources.rbac_authorization_v1 import RoleBinding

    gang = deployed({}, TEST_STEPS="20", TEST_STEP_S="0.02")
    kube_client.delete(RoleBinding, "demo-supervisor", namespace=namespace)
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 60)
    time.sleep(2)  # let the publisher try its last patches
    for rank in range(3):
        log = (gang.root / f"pod-{rank}.log").read_text()
        line = f"cannot patch pods/demo-{rank} in namespace {namespace}: the API refused it (403"
        assert log.count(line) == 1, log
    log0 = (gang.root / "pod-0.log").read_text()
    assert log0.count(f"cannot patch statefulsets/demo in namespace {namespace}") == 1
    assert log0.count(f"cannot patch statefulsets/demo/scale in namespace {namespace}") == 1
    assert _status(sandbox, namespace)["replicas"] == 3  # nothing scaled it


def test_up_scale_and_down_of_a_lifecycle_spec_with_the_documented_permissions(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    """docs/rbac.md's user Role may create the supervisor's Role (it holds every verb it grants)."""
    from lightkube.resources.rbac_authorization_v1 import Role

    from .test_rbac import documented_deployer

    with documented_deployer(kube_client, kubeconfig, namespace, tmp_path) as deployer:
        spec = write_spec(tmp_path, spec_doc("demo", 3, {}, namespace))
        for step in (
            ("up", str(spec), "--no-wait"),
            ("scale", "demo", "2"),
            ("status", "demo"),
            ("down", "demo", "--delete-volumes", "--yes"),
        ):
            result = berth(*step, kubeconfig=deployer)
            assert result.returncode == 0, f"berth {' '.join(step)}: {result.stderr}"
            if step[0] == "scale":  # the supervisor's Role follows the replica count
                pods = kube_client.get(Role, "demo-supervisor", namespace=namespace).rules[0].resourceNames
                assert pods == ["demo-0", "demo-1"]
        names = {r.metadata.name for r in kube_client.list(Role, namespace=namespace)}
        assert names == {"berth"}, "down removed the supervisor's Role"
