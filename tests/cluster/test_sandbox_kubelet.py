"""`berth sandbox up --kubelet`: real nodes (kubelet + containerd + runc), their pods, DNS, and `down`.

Needs root, Debian's containerd/runc/containernetworking-plugins, the kube build with kubelet,
CoreDNS (tools/coredns/build.sh) and Go (the probe image). Skips when the machine lacks one —
unless $BERTH_REQUIRE_KUBELET is set (CI), then it fails with what is missing.

The probe image is built here: tests/cluster/probe (a static Go program: greets, resolves the
names it is given through the pod's resolver, waits for SIGTERM), packed with berth.sandbox.oci.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.contract import GPU_RESOURCE, LABEL_SANDBOX_NODE, LABEL_ZONE
from berth.sandbox import NodeSpec, Sandbox, SandboxState, containerd, dns, find_bin_dir, oci
from berth.sandbox.node import RealNodes, SetupError

pytestmark = pytest.mark.cluster

PROBE_DIR = Path(__file__).parent / "probe"
BERTH = [sys.executable, "-m", "berth"]


def _unavailable(reason: str) -> None:
    if os.environ.get("BERTH_REQUIRE_KUBELET"):
        pytest.fail(f"BERTH_REQUIRE_KUBELET is set but {reason}")
    pytest.skip(reason)


def _prerequisites() -> Path:
    """The kube bin dir, after the same pre-flight checks `up --kubelet` makes."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("the control-plane binaries are not built: run tools/kube/build.sh")
    assert bin_dir is not None
    if dns.find_binary() is None:
        _unavailable("CoreDNS is not built: run tools/coredns/build.sh")
    if shutil.which("go") is None:
        _unavailable("go is not on PATH (it builds the probe image)")
    try:
        RealNodes(Path("/tmp/berth-preflight"), "probe", 1).preflight(bin_dir)  # checks only, creates nothing
    except SetupError as err:
        _unavailable(f"this machine cannot run a real node: {err.message}")
    return bin_dir


@dataclass
class KubeletSandbox:
    box: Sandbox
    state: SandboxState
    kubectl: Path
    probe_image: str

    def kubectl_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.state.kubeconfig)}
        out = subprocess.run(
            [str(self.kubectl), *args], capture_output=True, text=True, env=env, check=False, timeout=120
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out

    def apply(self, manifest: dict[str, Any]) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.state.kubeconfig)}
        subprocess.run(
            [str(self.kubectl), "apply", "-f", "-"],
            input=json.dumps(manifest).encode(),
            env=env,
            check=True,
            timeout=60,
        )


def _probe_image(cache: Path) -> tuple[str, Path]:
    binary = cache / "probe"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), "."],
        cwd=PROBE_DIR,
        env=env,
        check=True,
        timeout=300,
    )
    data = binary.read_bytes()
    import hashlib

    name = f"berth.local/probe:{hashlib.sha256(data).hexdigest()[:12]}"
    archive = cache / "probe.tar"
    oci.write_image(archive, name, [oci.ImageFile("probe", data)], ["/probe"])
    return name, archive


def _start(name: str, kubelets: int = 1) -> tuple[Sandbox, SandboxState]:
    # Not under pytest's tmp: the kubelet's unix socket paths must stay under 108 bytes.
    box = Sandbox(name, Path(tempfile.mkdtemp(prefix="berth-kt-")) / "state")
    state = box.up(NodeSpec(nodes=0), bin_dir=find_bin_dir(), timeout_s=240, kubelets=kubelets)
    return box, state


@pytest.fixture(scope="module")
def kubelet_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletSandbox]:
    tmp = tmp_path_factory.mktemp("kubelet")
    bin_dir = _prerequisites()
    image, archive = _probe_image(tmp)
    box, state = _start("pytest-kubelet", kubelets=2)
    try:
        for i in range(state.kubelets):  # each real node has its own containerd
            containerd.import_image(box.state_dir, i, archive)
        yield KubeletSandbox(box, state, bin_dir / "kubectl", image)
    finally:
        box.down()
        shutil.rmtree(box.state_dir.parent, ignore_errors=True)


# ---- bad input ----------------------------------------------------------------------------------
# Port 53 is taken in a network namespace of the test's own: the host's may already hold another
# sandbox's CoreDNS (the session's real-pods sandbox), which would make the case untestable there.
HOLD_PORT_53 = (
    "import socket, subprocess, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 53))\n"
    "sys.exit(subprocess.run(sys.argv[1:]).returncode)\n"
)


def test_port_taken_is_one_line_and_exit_2() -> None:
    _prerequisites()
    started = time.monotonic()
    out = subprocess.run(
        [
            "unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
            sys.executable, "-c", HOLD_PORT_53,
            *BERTH, "sandbox", "up", "--kubelet", "--name", "taken", "--state-dir", "/tmp/berth-taken",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: port 53/udp is taken"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert time.monotonic() - started < 30  # pre-flight: nothing was started, nothing to wait for
    assert not Path("/tmp/berth-taken").exists()


def test_not_root_is_one_line_and_exit_2() -> None:
    _prerequisites()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing")
    with tempfile.TemporaryDirectory(prefix="berth-nobody-") as home:  # pytest's tmp is root's only
        Path(home).chmod(0o777)
        where = ["--name", "nobody", "--state-dir", f"{home}/s"]
        out = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *BERTH, "sandbox", "up", "--kubelet", *where],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HOME": home},
        )
    assert out.returncode == 2, out.stderr
    assert "need root" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize(
    ("missing", "setup", "message"),
    [
        # A read-only cgroup hierarchy, in a private mount namespace of the test's own.
        ("cgroups", "mount -o remount,bind,ro /sys/fs/cgroup/pids", "cgroups are not writable: /sys/fs/cgroup/pids"),
        # A kernel without overlayfs, as every reader of /proc/filesystems sees it there.
        (
            "overlayfs",
            'grep -v overlay /proc/filesystems > "$T/fs" && mount --bind "$T/fs" /proc/filesystems',
            "overlayfs is not available in this kernel",
        ),
    ],
)
def test_missing_kernel_feature_is_one_line_and_exit_2(missing: str, setup: str, message: str) -> None:
    _prerequisites()
    with tempfile.TemporaryDirectory(prefix="berth-nofeature-") as tmp:
        script = f'{setup} && exec "$@"'
        unshare = ["unshare", "--mount", "--propagation", "private"]
        where = ["--name", missing, "--state-dir", f"{tmp}/s"]
        out = subprocess.run(
            [*unshare, "sh", "-c", script, "sh", *BERTH, "sandbox", "up", "--kubelet", *where],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "T": tmp},
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"error: {message}"), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert not Path(f"{tmp}/s").exists()


# ---- a real node -----------------------------------------------------------------------------
def test_real_node_ready_with_labels_and_gpus(kubelet_sandbox: KubeletSandbox) -> None:
    nodes = json.loads(kubelet_sandbox.kubectl_run("get", "nodes", "-o", "json").stdout)["items"]
    # --kubelet: no kwok nodes unless --nodes asks
    assert sorted(n["metadata"]["name"] for n in nodes) == ["sandbox-kubelet-0", "sandbox-kubelet-1"]
    for node, zone in zip(sorted(nodes, key=lambda n: n["metadata"]["name"]), ("zone-a", "zone-b"), strict=True):
        labels = node["metadata"]["labels"]
        assert labels[LABEL_SANDBOX_NODE] == "kubelet"
        assert labels[LABEL_ZONE] == zone
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True" and ready["DiskPressure"] == "False"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        assert node["status"]["capacity"][GPU_RESOURCE] == "8"  # advertised only: no device behind it


def test_pods_on_two_nodes_log_resolve_and_reach_each_other(kubelet_sandbox: KubeletSandbox) -> None:
    ks = kubelet_sandbox
    ns = f"kubelet-{uuid.uuid4().hex[:6]}"
    ks.kubectl_run("create", "namespace", ns)
    ks.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "peers", "namespace": ns},
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": {"app": "probe"},
                "ports": [{"name": "p", "port": 2222}],
            },
        }
    )

    def peer(i: int) -> str:
        return f"trainer-{i}.peers.{ns}.svc.cluster.local"

    for i in (0, 1):
        ks.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"trainer-{i}", "namespace": ns, "labels": {"app": "probe"}},
                "spec": {
                    "hostname": f"trainer-{i}",
                    "subdomain": "peers",
                    "nodeSelector": {LABEL_SANDBOX_NODE: "kubelet", "kubernetes.io/hostname": f"sandbox-kubelet-{i}"},
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "probe",
                            "image": ks.probe_image,
                            "imagePullPolicy": "Never",
                            "args": [f"dial:{peer(1 - i)}", "kubernetes.default.svc.cluster.local"],
                        }
                    ],
                },
            }
        )
    for i in (0, 1):
        ks.kubectl_run("wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", f"pod/trainer-{i}", "--timeout=90s")
    pods = json.loads(ks.kubectl_run("get", "-n", ns, "pods", "-o", "json").stdout)["items"]
    ip = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert {p["spec"]["nodeName"] for p in pods} == {"sandbox-kubelet-0", "sandbox-kubelet-1"}
    for i in (0, 1):
        deadline = time.monotonic() + 150
        logs = ""
        while time.monotonic() < deadline:
            logs = ks.kubectl_run("logs", "-n", ns, f"trainer-{i}", check=False).stdout  # via the API server
            if "kubernetes.default" in logs:
                break
            time.sleep(1)
        assert f"hello from trainer-{i}" in logs, logs
        other = f"trainer-{1 - i}"
        assert f"resolved {peer(1 - i)} {ip[other]}" in logs, logs  # the headless Service's per-pod name
        assert f"connected {peer(1 - i)}" in logs, logs  # pod to pod across the two nodes
        assert "resolved kubernetes.default.svc.cluster.local 10.96.0.1" in logs, logs
    ks.kubectl_run("delete", "namespace", ns, "--wait=false")


# ---- down after a crash leaves nothing -----------------------------------------------------------
def _host_leftovers(state_dir: Path, real: RealNodes) -> list[str]:
    found = real.leftovers()
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True).stdout
    found += [f"mount {m}" for m in mounts.splitlines() if str(state_dir) in m]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    found += [f"process {line.strip()}" for line in ps.splitlines() if str(state_dir) in line]
    return found


def _veths() -> set[str]:
    links = json.loads(
        subprocess.run(["ip", "-j", "link", "show", "type", "veth"], capture_output=True, text=True).stdout or "[]"
    )
    return {link["ifname"] for link in links}


def test_down_after_kubelet_sigkill_leaves_nothing(kubelet_sandbox: KubeletSandbox) -> None:
    del kubelet_sandbox  # only so this runs while the module's sandbox shows that two can coexist
    _prerequisites()
    veths_before = _veths()
    box, state = _start("crash")
    real = RealNodes(box.state_dir, "crash", 1)
    image, archive = oci.pause_image(Path.home() / ".cache" / "berth" / "images")
    del archive
    env = {**os.environ, "KUBECONFIG": str(state.kubeconfig)}
    kubectl = str(state.bin_dir / "kubectl")
    subprocess.run(
        [
            kubectl,
            "run",
            "sleeper",
            f"--image={image}",
            "--image-pull-policy=Never",
            f"--overrides={json.dumps({'spec': {'nodeSelector': {LABEL_SANDBOX_NODE: 'kubelet'}}})}",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [kubectl, "wait", "--for=jsonpath={.status.phase}=Running", "pod/sleeper", "--timeout=90s"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert _veths() - veths_before, "the pod has a veth on the node's bridge"
    assert real.cgroup_pids(), "the pod's processes are in the sandbox's cgroup"
    kubelet = next(p for p in state.processes if p.name == "kubelet-0")
    os.kill(kubelet.pid, signal.SIGKILL)
    containerd_rec = next(p for p in state.processes if p.name == "containerd-0")
    os.kill(containerd_rec.pid, signal.SIGKILL)  # the shims and the container live on, orphaned
    time.sleep(0.5)
    out = subprocess.run(
        [*BERTH, "sandbox", "down", "--name", "crash", "--state-dir", str(box.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert _host_leftovers(box.state_dir, real) == []
    assert not (_veths() - veths_before)
    assert not box.state_dir.exists()
    box.state_dir.parent.rmdir()
