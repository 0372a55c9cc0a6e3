"""Real pods for tests: one `sandbox up --kubelet 2` sandbox with the runtime image, for the whole session.

The fixtures ``cluster`` (session) and ``up`` (function) in conftest.py are built from this module; tests
that run berth's in-pod half in real pods (test_in_pod, test_lifecycle_in_pod, …) share the one sandbox
instead of each module starting its own (about 17 s each). Specs pick the real nodes with
`nodeSelector: {berth.dev/sandbox-node: kubelet}` and use the sandbox's default class `standard`
(`existing: true`), which on real nodes is served by `berth.sandbox.provisioner` with `local` PVs:
the kubelet applies the spec's fsGroup to those.

Skips when this machine cannot run a real node or build the image, unless BERTH_REQUIRE_KUBELET=1
(CI), which turns every skip into a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

TRAINER = (Path(__file__).parent / "data" / "in_pod_trainer.py").read_text()
BERTH = [sys.executable, "-m", "berth"]
KUBELET_NODES = {"sandbox-kubelet-0", "sandbox-kubelet-1"}
FS_GROUP = 2000  # not the image's gid (1000): ownership can only come from the kubelet applying fsGroup


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("BERTH_REQUIRE_KUBELET"):
        pytest.fail(f"BERTH_REQUIRE_KUBELET is set but {reason}")
    pytest.skip(reason)


@dataclass
class Cluster:
    state_dir: Path
    kubeconfig: Path
    kubectl: Path
    image: str
    env: dict[str, str]
    client: Any

    def berth(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BERTH, *args], capture_output=True, text=True, timeout=timeout, env=self.env)

    def kc(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def pod(self, ns: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.kc("-n", ns, "get", "pod", name, "-o", "json"))
        return data

    def logs(self, ns: str, pod: str) -> list[str]:
        return self.kc("-n", ns, "logs", pod, check=False).splitlines()

    def logs_when(self, ns: str, pod: str, ok: Callable[[list[str]], bool]) -> Callable[[], list[str] | None]:
        """For wait_for: the pod's log lines once OK(lines), else None."""

        def check() -> list[str] | None:
            got = self.logs(ns, pod)
            return got if got and ok(got) else None

        return check

    def tail(self, ns: str, pod: str) -> Callable[[], str]:
        """For wait_for's detail: the pod's last log lines and its container state."""

        def detail() -> str:
            state = self.kc(
                "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state}", check=False
            )
            return "\n".join([*self.logs(ns, pod)[-12:], f"state: {state}"])

        return detail

    def follow(self, ns: str, pod: str) -> subprocess.Popen[str]:
        """`kubectl logs -f`: the lines of a pod that is about to go away (ends when its container does)."""
        return subprocess.Popen(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "-n", ns, "logs", "-f", pod],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_for(check: Callable[[], Any], timeout: float, what: str, detail: Callable[[], str] | None = None) -> Any:
    """Poll CHECK until truthy; on timeout fail naming WHAT, with DETAIL() (e.g. the pod's last log lines)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError, KeyError, ValueError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}" + (f":\n{detail()}" if detail else "")
            )
        time.sleep(0.5)


def start_cluster(kubelets: int = 2, *, kube_proxy: bool = False, name: str = "pytest-in-pod") -> Iterator[Cluster]:
    """`sandbox up --kubelet 2` (no kwok node) and `berth sandbox image` into both nodes; down afterwards.

    ``kube_proxy`` (test_lifecycle_api_in_pod.py's own sandbox) adds kube-proxy: pods reach ClusterIPs.
    """
    from lightkube import Client, KubeConfig

    from berth.sandbox import NodeSpec, Sandbox, dns, find_bin_dir
    from berth.sandbox.node import RealNodes, SetupError

    if os.geteuid() != 0:
        _skip_or_fail("real nodes and the image build need root")
    bin_dir = find_bin_dir()
    if bin_dir is None or dns.find_binary() is None:
        _skip_or_fail("the control plane or CoreDNS is not built (tools/kube/build.sh, tools/coredns/build.sh)")
    assert bin_dir is not None
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        _skip_or_fail("debootstrap is not installed (the runtime image is built from Debian's packages)")
    try:
        RealNodes(Path("/tmp/berth-preflight"), "probe", kubelets, kube_proxy=kube_proxy).preflight(bin_dir)
    except SetupError as err:
        _skip_or_fail(f"this machine cannot run real nodes: {err.message}")
    # Not under pytest's tmp: the kubelet's unix socket paths must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="berth-ip-"))
    box = Sandbox(name, root / "s")
    real = RealNodes(box.state_dir, box.name, kubelets, kube_proxy=kube_proxy)
    try:
        started = time.monotonic()
        state = box.up(NodeSpec(nodes=0), bin_dir=bin_dir, timeout_s=240, kubelets=kubelets, kube_proxy=kube_proxy)
        what = f"--kubelet {kubelets}" + (" --kube-proxy" if kube_proxy else "")
        print(f"[in-pod] sandbox up {what}: {time.monotonic() - started:.1f} s", file=sys.stderr)
        env = {**os.environ, "KUBECONFIG": str(state.kubeconfig)}
        started = time.monotonic()
        done = subprocess.run(
            [*BERTH, "sandbox", "image", "--state-dir", str(box.state_dir), "-o", "json"],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        image = json.loads(done.stdout)
        nodes = [str(box.state_dir / f"nodes/node-{i}/containerd.sock") for i in range(kubelets)]
        assert sorted(image["imported"]) == nodes
        print(f"[in-pod] sandbox image (cached={image['cached']}): {time.monotonic() - started:.1f} s", file=sys.stderr)
        client = Client(KubeConfig.from_file(state.kubeconfig), field_manager="berth-tests")
        yield Cluster(box.state_dir, state.kubeconfig, bin_dir / "kubectl", image["reference"], env, client)
    finally:
        box.down()
        left = real.leftovers()
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"sandbox down left {left}"
        assert str(root) not in mounts, "sandbox down left mounts behind"


def spec(
    name: str,
    namespace: str,
    image: str,
    *,
    framework: str = "pytorch",
    replicas: int = 2,
    command: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A spec for the real nodes: small requests, the runtime image, the sandbox's default class."""
    body: dict[str, Any] = {
        "framework": framework,
        "replicas": replicas,
        "port": 29500,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "storageClasses": {"standard": {"existing": True}},
        "volumes": {"ckpt": {"mountPath": "/ckpt", "size": "1Gi", "storageClass": "standard"}},
        "securityContext": {"runAsUser": 1000, "fsGroup": FS_GROUP},
        "scheduling": {"nodeSelector": {"berth.dev/sandbox-node": "kubelet"}},
        "monitoring": {"prometheus": False},
        "terminationGracePeriodSeconds": 30,
        **(extra or {}),
    }
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


TRAIN = ["berth", "run", "--dns-timeout", "120", "--", "python3", "-c", TRAINER]


def up_and_down(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    """`berth up SPEC` (waits for Ready pods and Bound claims); `berth down --delete-volumes --yes` after."""
    applied: list[tuple[str, str]] = []

    def apply(document: dict[str, Any]) -> str:
        path = tmp_path / f"{document['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        applied.append((document["metadata"]["name"], document["metadata"]["namespace"]))
        started = time.monotonic()
        done = cluster.berth("up", str(path), "--timeout", "180")
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"[in-pod] berth up {path.name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
        return done.stdout

    yield apply
    for name, ns in applied:
        done = cluster.berth("down", name, "-n", ns, "--delete-volumes", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        cluster.kc("delete", "namespace", ns, "--wait=false", check=False)


def unique_ns(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"


def committed(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.fullmatch(r"committed step (\d+)", line))]


def claim_dir(cluster: Cluster, ns: str, claim: str) -> Path:
    """The host directory of CLAIM's local PV (all real nodes share this machine's filesystem)."""
    pvc = json.loads(cluster.kc("-n", ns, "get", "pvc", claim, "-o", "json"))
    pv = json.loads(cluster.kc("get", "pv", pvc["spec"]["volumeName"], "-o", "json"))
    return Path(pv["spec"]["local"]["path"])


def steps(directory: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("step-")) for p in directory.glob("step-*") if p.is_dir())
