"""containerd for the sandbox's real nodes: its configuration, socket, and importing images into it.

Debian's containerd 1.6 (CRI v1) with Debian's runc, one containerd per real node, each with every
path inside ``<state>/nodes/node-<i>``: root, state, socket, runc's root, the CNI configuration,
and network namespaces (``netns_mounts_under_state_dir``). Kubernetes 1.37's kubelet still accepts
a runtime without the RuntimeConfig CRI call (containerd < 1.7): it falls back to its own
``cgroupDriver`` and logs that support ends in 1.38 (``getCgroupDriverFromCRI`` in
``cmd/kubelet/app/server.go``).

For other modules (e.g. the runtime image): :data:`NAMESPACE` is the containerd namespace the
CRI plugin uses, :func:`socket_path` where node ``i`` listens, :func:`import_image` loads an
OCI archive into a node's containerd, where pods can use it with ``imagePullPolicy: Never``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from berth.errors import BerthError

NAMESPACE = "k8s.io"  # the CRI plugin's namespace: images pods can run
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def node_dir(state_dir: Path, index: int) -> Path:
    """Everything of real node INDEX: containerd's and the kubelet's directories, configs, CNI."""
    return state_dir / "nodes" / f"node-{index}"


def socket_path(state_dir: Path, index: int = 0) -> Path:
    """containerd's gRPC socket of real node INDEX (the kubelet's container runtime endpoint)."""
    return node_dir(state_dir, index) / "containerd.sock"


def config(state_dir: Path, index: int, sandbox_image: str) -> str:
    """containerd's config.toml (version 2) for real node INDEX."""
    d = node_dir(state_dir, index)
    runc = shutil.which("runc") or "/usr/sbin/runc"
    return f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket_path(state_dir, index)}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE here (a container host): clamp the -998 the kubelet asks for the pause
  # container to what containerd itself may set, or runc fails "oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{d}/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{d}/cni/net.d"
    max_conf_num = 1
"""


def cni_config(
    state_dir: Path,
    index: int,
    bridge: str,
    subnet: str,
    gateway: str,
    pod_range: tuple[str, str],
    service_cidr: str | None = None,
) -> str:
    """Node INDEX's CNI network: the sandbox's bridge (GATEWAY on SUBNET), pods from POD_RANGE, portmap.

    Every node's pods share one bridge and subnet (disjoint ranges): pods of different nodes
    reach each other over L2, with no IP forwarding on the host. No ipMasq: it would add
    iptables rules a crash leaves behind, and nothing outside the machine is reachable anyway.
    SERVICE_CIDR (with kube-proxy) is routed to GATEWAY, where kube-proxy's DNAT rules apply.
    """
    import json

    routes = {"routes": [{"dst": service_cidr, "gw": gateway}]} if service_cidr else {}
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "berth-sandbox",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [
                            [
                                {
                                    "subnet": subnet,
                                    "rangeStart": pod_range[0],
                                    "rangeEnd": pod_range[1],
                                    "gateway": gateway,
                                }
                            ]
                        ],
                        "dataDir": str(node_dir(state_dir, index) / "cni" / "ipam"),
                        **routes,
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def ctr(state_dir: Path, index: int, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``ctr`` against node INDEX's containerd in the CRI namespace."""
    binary = shutil.which("ctr")
    if binary is None:
        raise BerthError("ctr is missing (it comes with containerd)", hint="apt-get install containerd")
    return subprocess.run(
        [binary, "--address", str(socket_path(state_dir, index)), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )


def import_image(state_dir: Path, index: int, archive: Path) -> None:
    """Import an OCI/Docker image archive into node INDEX's containerd (unpacked for overlayfs)."""
    out = ctr(state_dir, index, "images", "import", "--snapshotter", "overlayfs", str(archive))
    if out.returncode != 0:
        raise BerthError(f"importing {archive} into containerd failed: {out.stderr.strip()}")


def has_image(state_dir: Path, index: int, name: str) -> bool:
    """Whether node INDEX's containerd holds image NAME."""
    out = ctr(state_dir, index, "images", "ls", "-q", f"name=={name}", timeout_s=30)
    return out.returncode == 0 and name in out.stdout.split()
