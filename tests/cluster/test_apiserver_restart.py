"""kube-apiserver SIGKILLed during `berth up`: berth recovers, or fails saying so; never a false success.

The sandbox's API server is killed for real and started again with its recorded command line
(same ports, same etcd). The new process is written back into the sandbox state so the session
fixture stops it by PID at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from berth.sandbox import Sandbox, SandboxState
from berth.sandbox.proc import ProcessRecord, is_running

from ..conftest import BERTH
from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


def _kill_apiserver(sandbox: SandboxState) -> ProcessRecord:
    record = next(p for p in sandbox.processes if p.name == "kube-apiserver")
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(record):
        assert time.monotonic() < deadline, "kube-apiserver survived SIGKILL"
        time.sleep(0.02)
    return record


def _restart_apiserver(sandbox: SandboxState, old: ProcessRecord, kube_client: Any) -> None:
    """Start it again with its recorded command line; the new PID goes into the state (``down`` stops it)."""
    from lightkube.resources.core_v1 import Namespace

    new = Sandbox(sandbox.name, sandbox.state_dir).start_component(old.name)
    sandbox.processes[sandbox.processes.index(old)] = new
    deadline = time.monotonic() + 60
    while True:
        try:
            list(kube_client.list(Namespace))
            return
        except Exception:
            assert time.monotonic() < deadline, "kube-apiserver did not come back"
            time.sleep(0.2)


def _start_up(spec: Path, kubeconfig: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BERTH, "up", str(spec), "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), **env},
    )


def _wait_for_first_object(kube_client: Any, namespace: str, proc: subprocess.Popen[str]) -> None:
    """Block until `up` has written its first namespaced object: the kill then lands mid-run."""
    from lightkube import ApiError
    from lightkube.resources.core_v1 import ServiceAccount

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            kube_client.get(ServiceAccount, "ml-training", namespace=namespace)
            return
        except ApiError:
            time.sleep(0.01)
    raise AssertionError(f"berth up wrote nothing (exit {proc.poll()})")


def test_apiserver_restart_during_up_is_ridden_out(
    sandbox: SandboxState, kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    spec = write_spec(tmp_path, seed_like(namespace))
    # A slow CI machine may take longer than the default 30 s to bring kube-apiserver back.
    proc = _start_up(spec, kubeconfig, {"BERTH_API_RETRY_S": "90"})
    _wait_for_first_object(kube_client, namespace, proc)
    old = _kill_apiserver(sandbox)
    time.sleep(1.0)
    _restart_apiserver(sandbox, old, kube_client)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "ml-training ready: 3/3 pods, 6 claims Bound" in out
    status = json.loads(berth("status", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert status["rollout"] == "complete" and all(c["phase"] == "Bound" for c in status["claims"])


def test_apiserver_down_longer_than_the_retry_budget_fails_clearly(
    sandbox: SandboxState, kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    spec = write_spec(tmp_path, seed_like(namespace))
    proc = _start_up(spec, kubeconfig, {"BERTH_API_RETRY_S": "2"})
    _wait_for_first_object(kube_client, namespace, proc)
    old = _kill_apiserver(sandbox)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        _restart_apiserver(sandbox, old, kube_client)
    assert proc.returncode == 1, out
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "no cluster reachable at https://127.0.0.1:" in first
    assert "after retrying for 2s" in first
    assert "ready:" not in out and "Traceback" not in err
    # Interrupted mid-apply, the message says the stack is incomplete; in the wait, what it was reading.
    assert "NOT complete" in first or "while trying to" in first
    again = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert again.returncode == 0, again.stderr
    assert "ml-training ready: 3/3 pods, 6 claims Bound" in again.stdout
