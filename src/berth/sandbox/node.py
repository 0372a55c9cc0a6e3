"""Real nodes for ``berth sandbox up --kubelet``: kubelet + containerd + runc + CNI bridge, and CoreDNS.

One Linux bridge ``berth<id>`` per sandbox, which we create on ``10.<x>.0.0/16`` with the
gateway ``10.<x>.0.1`` (where CoreDNS, :mod:`berth.sandbox.dns`, serves the cluster domain to
every pod) and one address per node, ``10.<x>.0.<10+i>`` (the node's IP: its kubelet listens
there and the API server reaches it there). Per node ``i`` (``sandbox-kubelet-<i>``): a
containerd (:mod:`berth.sandbox.containerd`) whose CNI bridge plugin gives pods addresses from
``10.<x>.<i+1>.0/24`` on that same bridge — so pods of different nodes talk over one L2 segment
and the host needs no IP forwarding — and a kubelet with a client certificate from the sandbox CA.

Everything the nodes start runs inside one cgroup ``/berth-<name>-<id>`` (in every cgroup v1
hierarchy): the kubelets' ``cgroupRoot`` is ``<that>/node-<i>`` and containerd (with its shims)
sits in ``<that>/node-<i>/runtime``. containerd and the kubelets share a private mount namespace
held by the ``mount-namespace`` process. So ``down`` after any crash finds every container by
its cgroup, every mount dies with the namespace, and the bridge is the only host object left,
deleted by name.

The command lines are :data:`berth.sandbox.components.NODE_COMPONENTS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.contract import GPU_RESOURCE, LABEL_SANDBOX_NODE, LABEL_ZONE
from berth.errors import BerthError
from berth.sandbox import containerd, dns, kubeproxy, oci
from berth.sandbox import pki as pki_mod
from berth.sandbox.binaries import Progress
from berth.sandbox.components import NODE_COMPONENTS, SERVICE_CIDR, NodeComponent
from berth.sandbox.proc import ProcessRecord, free_ports, is_running, spawn, stop

KIND = "kubelet"  # the value of LABEL_SANDBOX_NODE on real nodes (kwok nodes: "kwok")
NODE_PREFIX = "sandbox-kubelet-"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Mounted over in the nodes' mount namespace (see the mount-namespace component).
MASKED = (Path("/run"), Path("/var/lib"), Path("/var/log"))
# With --kube-proxy (berth.sandbox.kubeproxy): host processes, started after the kubelets.
PROXY_PROCESSES = ("api-relay", "kube-proxy")
EXIT_SETUP = 2  # the machine cannot run a component
SUBNET_FILE = "subnet-octet"  # in nodes/: the pods' 10.<octet>.0.0/16 when the hash's was taken


class SetupError(BerthError):
    """This machine lacks something a real node needs: one line naming it, exit 2."""

    exit_code = EXIT_SETUP


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise BerthError(f"{' '.join(argv)} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out


def cgroup_hierarchies(v1_only: bool = False) -> list[Path]:
    """The mounted cgroup hierarchies: v1 (one per controller set) and, unless V1_ONLY, the v2 one
    a hybrid host also mounts (``/sys/fs/cgroup/unified``: the kubelet makes its cgroups there too)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype == "cgroup" or (fstype == "cgroup2" and not v1_only):
                found.append(Path(left.split()[4]))
    return found


@dataclass(frozen=True)
class RealNodes:
    """The real nodes of one sandbox: names, addresses and cgroups derived from its state directory."""

    state_dir: Path
    sandbox: str
    count: int
    zones: int = 2
    gpus: int = 0
    kube_proxy: bool = False  # ClusterIPs from pods (berth.sandbox.kubeproxy)

    @property
    def _hash(self) -> str:
        return hashlib.sha256(str(self.state_dir).encode()).hexdigest()

    @property
    def nodes_dir(self) -> Path:
        return self.state_dir / "nodes"

    @property
    def cgroup(self) -> str:
        """The sandbox's cgroup, relative to each hierarchy's root."""
        return f"berth-{self.sandbox}-{self._hash[:8]}"

    def node_name(self, index: int) -> str:
        return f"{NODE_PREFIX}{index}"

    @property
    def bridge(self) -> str:
        return f"berth{self._hash[:8]}"  # at most 15 characters (IFNAMSIZ)

    def _candidate_octets(self) -> list[int]:
        """10.200-10.239 (clear of the service CIDR 10.96/16 and kwok's fake pod IPs 10.244/16), the hash's first."""
        first = int(self._hash[:4], 16) % 40
        return [200 + (first + k) % 40 for k in range(40)]

    def _octet(self) -> int:
        """The second octet of the pods' network: the one preflight chose (saved in the state dir, so every
        later call and `down` agree), else the state dir's hash's."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.nodes_dir / SUBNET_FILE).read_text())
        return self._candidate_octets()[0]

    @property
    def subnet(self) -> str:
        return f"10.{self._octet()}.0.0/16"

    def pod_range(self, index: int) -> tuple[str, str]:
        return f"10.{self._octet()}.{index + 1}.1", f"10.{self._octet()}.{index + 1}.254"

    @property
    def gateway(self) -> str:
        return f"10.{self._octet()}.0.1"

    def node_ip(self, index: int) -> str:
        return f"10.{self._octet()}.0.{10 + index}"

    @property
    def dns_ip(self) -> str:
        return self.gateway

    def zone_of(self, index: int) -> str:
        return f"zone-{chr(ord('a') + index % self.zones)}"

    def labels(self, index: int) -> dict[str, str]:
        return {LABEL_SANDBOX_NODE: KIND, LABEL_ZONE: self.zone_of(index), "topology.kubernetes.io/region": "sandbox"}

    # ---- pre-flight ------------------------------------------------------------------------
    def preflight(self, bin_dir: Path | None) -> None:
        """Fail fast, with one line naming what is missing, before anything is started."""
        if os.geteuid() != 0:
            raise SetupError("real nodes need root (containers, cgroups, mounts, bridges): run as root")
        for tool in ("containerd", "runc", "ctr", "unshare", "nsenter", "ip", "mount"):
            if shutil.which(tool) is None:
                raise SetupError(
                    f"{tool} is missing", hint="apt-get install containerd runc containernetworking-plugins iproute2"
                )
        for plugin in containerd.CNI_PLUGINS:
            if not (containerd.CNI_BIN_DIR / plugin).is_file():
                raise SetupError(
                    f"CNI plugin {plugin} is missing in {containerd.CNI_BIN_DIR}",
                    hint="apt-get install containernetworking-plugins",
                )
        if bin_dir is not None and not (bin_dir / "kubelet").exists():
            raise SetupError(f"{bin_dir} has no kubelet", hint="rebuild with tools/kube/build.sh")
        for path in (self.state_dir, bin_dir or self.state_dir):
            for masked in MASKED:
                if path.is_relative_to(masked):
                    raise SetupError(f"{path} is under {masked}, which the nodes' mount namespace replaces")
        if self.kube_proxy and shutil.which("iptables") is None:
            raise SetupError("--kube-proxy needs iptables", hint="apt-get install iptables")
        self._check_overlayfs()
        self._check_cgroups()
        self._check_network()
        # The kubelet makes unix sockets under its root dir (pods-api/<random>, plugins_registry/…):
        # sockaddr_un holds 107 bytes.
        if len(str(self.node_dir(self.count - 1) / "kubelet")) + 40 > 107:
            raise SetupError(
                f"state directory {self.state_dir} is too long for the kubelet's unix sockets: "
                "choose a shorter --state-dir"
            )

    def _check_overlayfs(self) -> None:
        if "overlay" not in Path("/proc/filesystems").read_text().split():
            raise SetupError("overlayfs is not available in this kernel (containerd's snapshotter needs it)")
        try:
            with tempfile.TemporaryDirectory(prefix="berth-overlay-") as tmp:
                for d in ("lower", "upper", "work", "merged"):
                    (Path(tmp) / d).mkdir()
                opts = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work"
                # In a throwaway mount namespace: nothing to unmount afterwards.
                mount = ["mount", "-t", "overlay", "overlay", "-o", opts, f"{tmp}/merged"]
                out = _run("unshare", "--mount", *mount, check=False)
        except OSError as err:
            raise SetupError(f"cannot try an overlayfs mount: {err}") from err
        if out.returncode != 0:
            raise SetupError(f"cannot mount overlayfs here: {out.stderr.strip()}")

    def _check_cgroups(self) -> None:
        hierarchies = {p.name for p in cgroup_hierarchies(v1_only=True)}
        if not hierarchies:
            raise SetupError(
                "no cgroup v1 hierarchy is mounted (cgroup v2 is not supported by the sandbox's real nodes yet)"
            )
        for needed in ("cpu", "cpuacct", "cpuset", "memory", "pids"):
            if not any(needed in h.split(",") for h in hierarchies):
                raise SetupError(f"cgroup controller {needed} is not mounted under {CGROUP_ROOT}")
        for hierarchy in cgroup_hierarchies():
            probe = hierarchy / f"berth-probe-{os.getpid()}"
            try:
                probe.mkdir()
                probe.rmdir()
            except OSError as err:
                raise SetupError(f"cgroups are not writable: {hierarchy}: {err.strerror}") from err

    def _check_network(self) -> None:
        links = json.loads(_run("ip", "-j", "link", "show").stdout or "[]")
        names = {link.get("ifname") for link in links}
        addrs = json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]")
        used = {a.get("local") for link in addrs for a in link.get("addr_info", [])}
        if self.count > 200:
            raise SetupError(f"{self.count} real nodes: at most 200 fit one sandbox's address plan")
        if self.bridge in names:
            raise SetupError(f"network interface {self.bridge} exists already (another sandbox, or a leftover)")
        if self._free_octet(used) is None:
            raise SetupError("every pods' network 10.200.0.0/16 to 10.239.0.0/16 has an address of this machine")
        taken = wildcard_listeners(dns.DNS_PORT)
        if taken:
            raise SetupError(
                f"port {dns.DNS_PORT}/{taken[0]} is taken by another process on all addresses (CoreDNS needs it "
                f"on {self.dns_ip})"
            )

    def _free_octet(self, used: set[str | None]) -> int | None:
        """The first candidate /16 holding none of USED (this machine's addresses): another sandbox may hold
        the hash's."""
        addresses = [ipaddress.ip_address(a) for a in used if a]
        for octet in self._candidate_octets():
            if not any(a in ipaddress.ip_network(f"10.{octet}.0.0/16") for a in addresses):
                return octet
        return None

    def reserve_subnet(self) -> None:
        """After a passing :meth:`preflight`: save the pods' network found free in the state dir."""
        addrs = json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]")
        octet = self._free_octet({a.get("local") for link in addrs for a in link.get("addr_info", [])})
        if octet is not None and octet != self._octet():
            self.nodes_dir.mkdir(parents=True, exist_ok=True)
            (self.nodes_dir / SUBNET_FILE).write_text(f"{octet}\n")

    # ---- configuration ----------------------------------------------------------------------
    def node_dir(self, index: int) -> Path:
        return containerd.node_dir(self.state_dir, index)

    def write_config(self, server: str, pki: pki_mod.Pki, context: str, ports: dict[str, int]) -> None:
        """Certificates, kubeconfigs, containerd, CNI, kubelet and CoreDNS configuration files."""
        self.nodes_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            d = self.node_dir(i)
            (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
            (d / "pod-logs").mkdir(exist_ok=True)
            client = f"kubelet-{i}"
            pki_mod.issue_client(pki, pki_mod.ClientCert(client, f"system:node:{self.node_name(i)}", "system:nodes"))
            pki_mod.write_kubeconfig(d / "kubelet.kubeconfig", pki, client, server, context)
            (d / "cni" / "net.d" / "10-berth.conflist").write_text(
                containerd.cni_config(
                    self.state_dir,
                    i,
                    self.bridge,
                    self.subnet,
                    self.gateway,
                    self.pod_range(i),
                    SERVICE_CIDR if self.kube_proxy else None,
                )
            )
            (d / "kubelet.yaml").write_text(json.dumps(self._kubelet_config(i, pki, ports), indent=2))
        pki_mod.issue_client(pki, pki_mod.ClientCert(dns.CLIENT, dns.USER))
        if self.kube_proxy:
            pki_mod.issue_client(pki, pki_mod.ClientCert(kubeproxy.CLIENT, kubeproxy.USER))
            pki_mod.write_kubeconfig(self.nodes_dir / "kube-proxy.kubeconfig", pki, kubeproxy.CLIENT, server, context)
        pki_mod.write_kubeconfig(self.nodes_dir / "coredns.kubeconfig", pki, dns.CLIENT, server, context)
        (self.nodes_dir / "Corefile").write_text(
            dns.corefile(
                self.dns_ip, self.nodes_dir / "coredns.kubeconfig", ports["coredns-health"], ports["coredns-ready"]
            )
        )

    def _kubelet_config(self, index: int, pki: pki_mod.Pki, ports: dict[str, int]) -> dict[str, Any]:
        d = self.node_dir(index)
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine kind has cgroup v1 only; 1.37 refuses it unless told not to.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}/node-{index}",
            "containerRuntimeEndpoint": f"unix://{containerd.socket_path(self.state_dir, index)}",
            "address": self.node_ip(index),
            "port": ports[f"kubelet-{index}"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": ports[f"kubelet-{index}-healthz"],
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [self.dns_ip],
            "clusterDomain": dns.CLUSTER_DOMAIN,
            "staticPodPath": "",
            "failSwapOn": False,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "podLogsDir": str(d / "pod-logs"),
            "volumePluginDir": str(d / "volume-plugins"),
            "resolvConf": "/etc/resolv.conf",
            # A shared build machine: thresholds in absolute sizes so the node is not "under disk
            # pressure" because the disk is fuller than the 10-15 % defaults; no image GC.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1Gi",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1Gi",
                "imagefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "imageMinimumGCAge": "87600h",
            "maxPods": 110,
            "serializeImagePulls": False,
            # Its KUBE-FIREWALL/hint chains are for kube-proxy (none here) and would outlive a crash.
            "makeIPTablesUtilChains": False,
            "nodeStatusReportFrequency": "10s",
            # Volume stats (the Summary API `berth status` reads) every 5 s, not every minute: a test
            # sees a write without waiting a minute; the volumes here are small, statfs/du are cheap.
            "volumeStatsAggPeriod": "5s",
        }

    # ---- start ----------------------------------------------------------------------------
    def port_names(self) -> list[str]:
        names = ["coredns-health", "coredns-ready"]
        for i in range(self.count):
            names += [f"kubelet-{i}", f"kubelet-{i}-healthz"]
        return names + (["kube-proxy-healthz", "kube-proxy-metrics"] if self.kube_proxy else [])

    def process_count(self) -> int:
        """How many processes the nodes run (their entries in the sandbox's state)."""
        extra = len(PROXY_PROCESSES) if self.kube_proxy else 0
        return sum(self.count if c.per_node else 1 for c in NODE_COMPONENTS) + extra

    def allocate_ports(self) -> dict[str, int]:
        names = self.port_names()
        return dict(zip(names, free_ports(len(names)), strict=True))

    def argv(self, component: NodeComponent, index: int, kube: Path, coredns: Path, holder: int | None) -> list[str]:
        values = {
            "node": self.node_dir(index),
            "index": index,
            "ip": self.node_ip(index),
            "name": self.node_name(index),
            "labels": ",".join(f"{k}={v}" for k, v in self.labels(index).items()),
            "nodes": self.nodes_dir,
            "dir": self.state_dir,
        }
        binaries = {None: str(kube), "coredns": str(coredns), "python": sys.executable}
        binary = binaries.get(component.binary) or shutil.which(component.binary or "") or str(component.binary)
        argv = [binary, *(arg.format(**values) for arg in component.args)]
        if component.mount_ns:
            assert holder is not None
            argv = [shutil.which("nsenter") or "nsenter", f"--mount=/proc/{holder}/ns/mnt", "--", *argv]
        return argv

    def create_host_objects(self) -> None:
        """The cgroups and the bridge (all removed by :meth:`teardown`)."""
        for hierarchy in cgroup_hierarchies():
            for i in range(self.count):
                _mkcgroup(hierarchy, f"{self.cgroup}/node-{i}/runtime")
        _run("ip", "link", "add", "name", self.bridge, "type", "bridge")
        prefix = self.subnet.rsplit("/", 1)[1]
        for ip in (self.gateway, *(self.node_ip(i) for i in range(self.count))):
            _run("ip", "addr", "add", f"{ip}/{prefix}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def join_cgroup(self, pid: int, index: int) -> None:
        for hierarchy in cgroup_hierarchies():
            with contextlib.suppress(OSError):
                (hierarchy / self.cgroup / f"node-{index}" / "runtime" / "cgroup.procs").write_text(str(pid))

    def start(
        self,
        *,
        kube: Path,
        server: str,
        pki: pki_mod.Pki,
        context: str,
        record: Callable[[ProcessRecord], None],
        wait_http: Callable[[str, ProcessRecord], None],
        progress: Progress,
        deadline: float,
    ) -> None:
        """Start the nodes' processes in order; RECORD saves each one right after it starts."""
        coredns = dns.find_binary() or dns.build(progress)
        proxy = (kubeproxy.find_binary() or kubeproxy.build(progress)) if self.kube_proxy else None
        progress("building the pause image")
        pause_name, pause_archive = oci.pause_image(Path.home() / ".cache" / "berth" / "images")
        ports = self.allocate_ports()
        (self.nodes_dir).mkdir(parents=True, exist_ok=True)
        (self.nodes_dir / "ports.json").write_text(json.dumps(ports))
        progress(f"writing configuration for {self.count} real node(s)")
        self.write_config(server, pki, context, ports)
        for i in range(self.count):
            (self.node_dir(i) / "containerd.toml").write_text(containerd.config(self.state_dir, i, pause_name))
        progress(f"creating cgroups and bridge {self.bridge}")
        self.create_host_objects()
        logs = self.state_dir / "logs"
        holder: int | None = None
        for component in NODE_COMPONENTS:
            for i in range(self.count if component.per_node else 1):
                name = f"{component.name}-{i}" if component.per_node else component.name
                progress(f"starting {name}")
                rec = spawn(name, self.argv(component, i, kube, coredns, holder), logs / f"{name}.log", self.state_dir)
                record(rec)
                if component.name == "mount-namespace":
                    holder = rec.pid
                    _wait_for(lambda: (self.nodes_dir / "mount-namespace.ready").exists(), rec, deadline, name)
                elif component.name == "containerd":
                    self.join_cgroup(rec.pid, i)
                    sock = containerd.socket_path(self.state_dir, i)
                    _wait_for(sock.exists, rec, deadline, f"{name} socket {sock}")
                    if not containerd.has_image(self.state_dir, i, pause_name):
                        containerd.import_image(self.state_dir, i, pause_archive)
                elif component.name == "coredns":
                    wait_http(f"http://127.0.0.1:{ports['coredns-health']}/health", rec)
                elif component.name == "kubelet":
                    self.join_cgroup(rec.pid, i)
                    wait_http(f"http://127.0.0.1:{ports[f'kubelet-{i}-healthz']}/healthz", rec)
        if proxy is not None:
            self._start_kube_proxy(proxy, server, ports, record, wait_http, progress)

    def _start_kube_proxy(
        self,
        binary: Path,
        server: str,
        ports: dict[str, int],
        record: Callable[[ProcessRecord], None],
        wait_http: Callable[[str, ProcessRecord], None],
        progress: Progress,
    ) -> None:
        """The relay to the API server (what the ``kubernetes`` Service's endpoint names), then kube-proxy."""
        logs = self.state_dir / "logs"
        api_port = int(server.rsplit(":", 1)[1])
        progress(f"starting api-relay ({self.gateway}:{api_port} -> 127.0.0.1:{api_port})")
        relay = [sys.executable, "-m", "berth.sandbox.kubeproxy", f"--listen={self.gateway}:{api_port}"]
        relay += [f"--to=127.0.0.1:{api_port}", f"--allow={self.subnet}"]
        record(spawn("api-relay", relay, logs / "api-relay.log", self.state_dir))
        kubeproxy.claim(self.state_dir)
        progress("starting kube-proxy (iptables mode)")
        argv = kubeproxy.argv(
            binary,
            self.nodes_dir / "kube-proxy.kubeconfig",
            self.node_name(0),
            self.subnet,
            (ports["kube-proxy-healthz"], ports["kube-proxy-metrics"]),
        )
        rec = spawn("kube-proxy", argv, logs / "kube-proxy.log", self.state_dir)
        record(rec)
        kubeproxy.record_pid(self.state_dir, rec.pid)
        wait_http(f"http://127.0.0.1:{ports['kube-proxy-healthz']}/livez", rec)

    def seed(self, kube: Any, progress: Progress) -> None:
        """CoreDNS's read-only RBAC; the GPU capacity of registered real nodes (when asked)."""
        from lightkube.codecs import from_dict

        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "berth-sandbox:coredns"},
            "rules": dns.RBAC_RULES,
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "berth-sandbox:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "berth-sandbox:coredns",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": dns.USER}],
        }
        for manifest in (role, binding):
            obj = from_dict(manifest)
            kube.call(
                f"apply {manifest['kind']}", lambda obj=obj: kube.client.apply(obj, field_manager="berth-sandbox")
            )

    def advertise_gpus(self, kube: Any, index: int) -> None:
        """The documented extended-resource patch: ``nvidia.com/gpu`` in the node's status capacity.

        Only a number for the scheduler: no device is injected into containers.
        """
        from lightkube.resources.core_v1 import NodeStatus
        from lightkube.types import PatchType

        path = "/status/capacity/" + GPU_RESOURCE.replace("~", "~0").replace("/", "~1")
        patch = [{"op": "add", "path": path, "value": str(self.gpus)}]
        kube.call(
            f"patch {self.node_name(index)} status",
            lambda: kube.client.patch(NodeStatus, self.node_name(index), patch, patch_type=PatchType.JSON),
        )

    # ---- teardown ---------------------------------------------------------------------------
    def teardown(self, processes: list[ProcessRecord]) -> None:
        """Stop the nodes and remove every container, mount, cgroup and bridge they made.

        Works after a crash too: containers are found by cgroup, not by asking containerd; the
        mounts live in the nodes' own mount namespace and vanish with its last process.
        """
        names = {c.name for c in NODE_COMPONENTS} | set(PROXY_PROCESSES)
        mine = [p for p in processes if _component(p.name) in names]
        order = {"kube-proxy": 0, "api-relay": 0, "kubelet": 1, "coredns": 2, "containerd": 3, "mount-namespace": 4}
        ours = sorted(mine, key=lambda p: order.get(_component(p.name), 9))
        stop([p for p in ours if _component(p.name) != "mount-namespace"], grace_s=5.0)
        if self.kube_proxy:  # its rules outlive it: --cleanup removes them, and the host slot is free
            kubeproxy.release(self.state_dir, kubeproxy.find_binary())
        self.kill_cgroup_processes()
        stop([p for p in ours if _component(p.name) == "mount-namespace"], grace_s=2.0)
        self.remove_host_objects()

    def cgroup_pids(self) -> set[int]:
        pids: set[int] = set()
        for hierarchy in cgroup_hierarchies():
            top = hierarchy / self.cgroup
            if not top.is_dir():
                continue
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs.read_text().split())
        return pids

    def kill_cgroup_processes(self, timeout_s: float = 15.0) -> None:
        """SIGKILL every process in the sandbox's cgroups (containers, shims) until none is left."""
        deadline = time.monotonic() + timeout_s
        while pids := self.cgroup_pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise BerthError(f"processes {sorted(pids)} in cgroup {self.cgroup} do not die")
            time.sleep(0.1)

    def remove_host_objects(self) -> None:
        _run("ip", "link", "delete", self.bridge, check=False)
        deadline = time.monotonic() + 10
        for hierarchy in cgroup_hierarchies():
            top = hierarchy / self.cgroup
            if not top.is_dir():
                continue
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
            for d in [*dirs, top]:
                while True:
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)

    def leftovers(self) -> list[str]:
        """What of this sandbox's nodes still exists on the host (for tests and ``down``'s check)."""
        found = [f"cgroup {h / self.cgroup}" for h in cgroup_hierarchies() if (h / self.cgroup).exists()]
        links = json.loads(_run("ip", "-j", "link", "show", check=False).stdout or "[]")
        names = {link.get("ifname") for link in links}
        found += [f"interface {self.bridge}" for _ in [1] if self.bridge in names]
        found += [f"process {pid}" for pid in sorted(self.cgroup_pids())]
        if self.kube_proxy:
            found += kubeproxy.leftovers(self.state_dir)
        return found


def wildcard_listeners(port: int) -> list[str]:
    """Protocols with a socket bound to PORT on every address (0.0.0.0 or ::), from /proc/net.

    Such a socket keeps CoreDNS from binding PORT on the bridge address; one bound to a single
    other address (a local stub resolver on 127.0.0.53) does not.
    """
    found = []
    for proto in ("udp", "tcp", "udp6", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
                fields = line.split()
                addr, _, hex_port = fields[1].partition(":")
                listening = proto.startswith("udp") or fields[3] == "0A"
                if listening and int(hex_port, 16) == port and int(addr, 16) == 0:
                    found.append(proto.rstrip("6"))
    return found


def _component(process_name: str) -> str:
    """``kubelet-0`` → ``kubelet``; ``coredns`` → ``coredns``."""
    head, _, tail = process_name.rpartition("-")
    return head if tail.isdigit() else process_name


def _mkcgroup(hierarchy: Path, relative: str) -> None:
    """mkdir -p a cgroup; cpuset cgroups get their parent's cpus and mems (v1 starts them empty)."""
    path = hierarchy
    for part in relative.split("/"):
        parent, path = path, path / part
        if path.is_dir():
            continue
        path.mkdir()
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((parent / knob).read_text())


def _wait_for(check: Callable[[], bool], record: ProcessRecord, deadline: float, what: str) -> None:
    from berth.sandbox.proc import log_tail

    while not check():
        if not is_running(record):
            raise BerthError(
                f"{record.name} exited during start-up; last lines of {record.log}:\n{log_tail(Path(record.log))}"
            )
        if time.monotonic() > deadline:
            raise BerthError(f"sandbox start timed out waiting for {what}", hint=f"see {record.log}")
        time.sleep(0.1)
