"""The sandbox is a real control plane: real versions, nodes, scheduling, PV binding, admission."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from berth.contract import GPU_RESOURCE, LABEL_ZONE
from berth.sandbox.cluster import HOSTPATH_PV_ROOT, Sandbox, SandboxState
from berth.sandbox.proc import is_running

from ..conftest import berth_process

pytestmark = pytest.mark.cluster

GO_MOD = Path(__file__).resolve().parents[2] / "tools" / "kube" / "go.mod"


def pinned(module: str) -> str:
    """The version tools/kube/go.mod requires for MODULE."""
    match = re.search(rf"^\s*{re.escape(module)} (v\S+)", GO_MOD.read_text(), re.MULTILINE)
    assert match, f"{module} not in {GO_MOD}"
    return match.group(1)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_server_and_etcd_report_pinned_versions(sandbox: SandboxState, kubectl: Path) -> None:
    out = subprocess.run(
        [str(kubectl), "--kubeconfig", str(sandbox.kubeconfig), "version", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    versions = json.loads(out)
    expected = pinned("k8s.io/kubernetes")
    assert versions["serverVersion"]["gitVersion"] == expected
    assert versions["clientVersion"]["gitVersion"] == expected
    etcd = subprocess.run(
        [str(sandbox.bin_dir / "etcd"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"etcd Version: {pinned('go.etcd.io/etcd/server/v3').lstrip('v')}" in etcd


def test_nodes_ready_over_zones_with_gpus(kube_client: Any) -> None:
    from lightkube.resources.core_v1 import Node

    nodes = list(kube_client.list(Node))
    assert len(nodes) == 3
    zones = sorted(n.metadata.labels[LABEL_ZONE] for n in nodes)
    assert zones == ["zone-a", "zone-a", "zone-b"]
    for node in nodes:
        assert node.metadata.labels["kubernetes.io/hostname"] == node.metadata.name
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
        assert node.status.capacity[GPU_RESOURCE] == "8"
        assert node.status.allocatable[GPU_RESOURCE] == "8"


def test_statefulset_pvcs_bind_on_first_consumer(kube_client: Any, namespace: str) -> None:
    from lightkube.codecs import from_dict
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim, Pod

    labels = {"app": "train"}
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "train", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "serviceName": "train",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "registry.invalid/train:1",
                            "resources": {"limits": {GPU_RESOURCE: "2"}},
                            "volumeMounts": [{"name": "ckpt", "mountPath": "/ckpt"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "ckpt"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    kube_client.create(from_dict(sts))

    def ready() -> bool:
        obj = kube_client.get(StatefulSet, "train", namespace=namespace)
        return bool(obj.status and obj.status.readyReplicas == 2)

    wait_for(ready, 60, "StatefulSet train 2/2 Ready")
    claims = {c.metadata.name: c for c in kube_client.list(PersistentVolumeClaim, namespace=namespace)}
    assert sorted(claims) == ["ckpt-train-0", "ckpt-train-1"]
    for claim in claims.values():
        assert claim.status.phase == "Bound"
        assert claim.spec.storageClassName == "standard"  # the default class was applied
        # WaitForFirstConsumer: provisioning happened for the node the scheduler picked.
        assert claim.metadata.annotations["volume.kubernetes.io/selected-node"].startswith("sandbox-node-")
        pv = kube_client.get(PersistentVolume, claim.spec.volumeName)
        assert pv.spec.capacity["storage"] == "1Gi"
        host_dir = Path(pv.spec.hostPath.path)
        assert host_dir.parent == HOSTPATH_PV_ROOT and host_dir.is_dir()
    for pod in kube_client.list(Pod, namespace=namespace):
        assert pod.status.phase == "Running"
        assert (
            pod.spec.nodeName
            == claims[f"ckpt-{pod.metadata.name}"].metadata.annotations["volume.kubernetes.io/selected-node"]
        )


def test_restricted_namespace_rejects_privileged_pod(kube_client: Any, make_namespace: Any) -> None:
    from lightkube.codecs import from_dict
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import ServiceAccount

    ns = make_namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    wait_for(lambda: _exists(kube_client, ServiceAccount, "default", ns), 30, "default ServiceAccount")

    def pod(name: str, security: dict[str, Any], container_security: dict[str, Any]) -> Any:
        return from_dict(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "securityContext": security,
                    "containers": [
                        {"name": "c", "image": "registry.invalid/x:1", "securityContext": container_security}
                    ],
                },
            }
        )

    with pytest.raises(ApiError) as err:
        kube_client.create(pod("privileged", {}, {"privileged": True}))
    assert err.value.status.code == 403
    assert 'violates PodSecurity "restricted:latest"' in err.value.status.message
    assert "privileged" in err.value.status.message

    # The same namespace admits a pod that meets the profile: rejection is the policy, not a fault.
    compliant = kube_client.create(
        pod(
            "compliant",
            {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        )
    )
    assert compliant.metadata.uid


def _exists(client: Any, kind: Any, name: str, namespace: str) -> bool:
    from lightkube.core.exceptions import ApiError

    try:
        client.get(kind, name, namespace=namespace)
    except ApiError as err:
        if err.status.code == 404:
            return False
        raise
    return True


def test_up_is_idempotent(sandbox: SandboxState) -> None:
    again = Sandbox(sandbox.name, sandbox.state_dir).up()
    assert [p.pid for p in again.processes] == [p.pid for p in sandbox.processes]
    assert again.server == sandbox.server


def test_up_restarts_a_dead_component_and_keeps_the_data(
    sandbox: SandboxState, kube_client: Any, namespace: str
) -> None:
    import signal

    from lightkube.codecs import from_dict
    from lightkube.resources.core_v1 import Pod

    box = Sandbox(sandbox.name, sandbox.state_dir)
    old = next(p for p in sandbox.processes if p.name == "kube-scheduler")
    os.kill(old.pid, signal.SIGKILL)
    wait_for(lambda: not is_running(old), 10, "kube-scheduler to die")
    assert not box.status().running

    repaired = box.up()
    sandbox.processes[:] = repaired.processes  # keep the session fixture's view current
    new = next(p for p in repaired.processes if p.name == "kube-scheduler")
    assert new.pid != old.pid and is_running(new)
    others = {p.name: p.pid for p in repaired.processes if p.name != "kube-scheduler"}
    assert others == {p.name: p.pid for p in box.load().processes if p.name != "kube-scheduler"}
    assert box.status().running
    # The namespace made before the repair survived (same etcd), and the new scheduler schedules.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "after-repair", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
    }
    kube_client.create(from_dict(pod))
    wait_for(lambda: kube_client.get(Pod, "after-repair", namespace=namespace).spec.nodeName, 30, "scheduling")


def berth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return berth_process(*args, env=env, timeout=180)


def test_cli_up_status_env_down_leaves_no_process(sandbox: SandboxState, tmp_path: Path) -> None:
    """A second, one-node sandbox through the CLI; `down` must leave none of its PIDs alive."""
    state_dir = tmp_path / "box"
    opts = ["--name", "clitest", "--state-dir", str(state_dir)]
    up = berth("sandbox", "up", *opts, "--nodes", "1", "--zones", "1", env={"BERTH_KUBE_BIN": str(sandbox.bin_dir)})
    assert up.returncode == 0, up.stderr
    assert "ready in" in up.stderr

    status = berth("sandbox", "status", *opts, "-o", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"] and info["apiReady"]
    assert info["version"] == pinned("k8s.io/kubernetes")
    assert sorted(p["name"] for p in info["processes"]) == sorted(
        ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
    )
    records = Sandbox("clitest", state_dir).load()
    assert records is not None
    assert all(is_running(r) for r in records.processes)

    env = berth("sandbox", "env", *opts)
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in env.stdout.splitlines()
    # The exports are meant for eval: kubectl from PATH must then reach this sandbox.
    shell = subprocess.run(
        ["bash", "-c", 'eval "$(cat)"; kubectl get nodes -o name'],
        input=env.stdout,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert shell.stdout.split() == ["node/sandbox-node-0"], shell.stderr

    down = berth("sandbox", "down", *opts)
    assert down.returncode == 0, down.stderr
    for record in records.processes:
        assert not is_running(record), f"{record.name} (pid {record.pid}) still running after down"
        # Gone, or a zombie waiting for init to reap it (the CLI that spawned it has exited).
        stat = Path(f"/proc/{record.pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(") ", 1)[1][0] in "ZX"
    assert not state_dir.exists()
    gone = berth("sandbox", "status", *opts)
    assert gone.returncode == 1 and "not running" in gone.stdout


def test_failed_start_shows_the_log_and_leaves_no_process(sandbox: SandboxState, tmp_path: Path) -> None:
    from berth.errors import BerthError

    state_dir = tmp_path / "broken"
    state_dir.mkdir()
    (state_dir / "etcd").write_text("a file where etcd wants its data directory\n")
    box = Sandbox("broken", state_dir)
    with pytest.raises(BerthError) as err:
        box.up(bin_dir=sandbox.bin_dir, timeout_s=30)
    assert "etcd exited during start-up" in err.value.message
    assert str(state_dir / "etcd") in err.value.message  # etcd's own complaint, from its log
    state = box.load()
    assert state is not None and state.processes
    assert not any(is_running(p) for p in state.processes)
    assert box.down() == []
    assert not state_dir.exists()


def test_up_without_binaries_says_how_to_build(tmp_path: Path) -> None:
    result = berth("sandbox", "up", "--state-dir", str(tmp_path / "s"), env={"BERTH_KUBE_BIN": str(tmp_path)})
    assert result.returncode == 1
    assert "control-plane binaries are not built" in result.stderr
    assert "tools/kube/build.sh" in result.stderr
    assert "Traceback" not in result.stderr
