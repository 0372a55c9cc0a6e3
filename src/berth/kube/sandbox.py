"""A real Kubernetes control plane on this machine, for trying berth and for its cluster tests.

``berth sandbox up`` starts etcd, kube-apiserver (RBAC, Pod Security admission),
kube-controller-manager (with its host-path dynamic provisioner, so StatefulSet PVCs really
bind), kube-scheduler and kwok (fake kubelets: pods become Running/Ready without containers),
all built from source by ``tools/kube/build.sh`` and bound to 127.0.0.1 on free ports. It then
creates fake GPU nodes over several zones and a default StorageClass ``standard``
(WaitForFirstConsumer). Every process is recorded by PID in ``<state>/state.json`` and ``down``
stops exactly those.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import BerthError, UsageError
from berth.kube import _sandbox_pki as pki_mod
from berth.kube._sandbox_proc import ProcessRecord, free_ports, is_running, log_tail, spawn, stop

STATE_FILE = "state.json"
STORAGE_CLASS = "standard"
HOSTPATH_PV_ROOT = Path("/tmp/hostpath_pv")  # fixed by kube-controller-manager's host-path provisioner
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
ZONE_LABEL = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY = "berth-sandbox"
# Components in start order; down stops them in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink for library callers that do not want output."""


def cache_root() -> Path:
    """Where built binaries live (outside the repository): ``$BERTH_KUBE_CACHE`` or ~/.cache/berth/kube."""
    env = os.environ.get("BERTH_KUBE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "berth" / "kube"


def default_state_dir(name: str) -> Path:
    return Path.home() / ".cache" / "berth" / "sandbox" / name


def build_script() -> Path | None:
    """``tools/kube/build.sh`` of the source checkout berth runs from, if it runs from one."""
    script = Path(__file__).resolve().parents[3] / "tools" / "kube" / "build.sh"
    return script if script.is_file() else None


def _build_hint() -> str:
    script = build_script()
    where = str(script) if script else "tools/kube/build.sh (in a berth source checkout)"
    return f"build them with {where} (several minutes cold, needs Go), or run `berth sandbox up --build`"


def find_bin_dir() -> Path | None:
    """The directory holding the built ``kube`` multi-call binary and its symlinks, if built.

    ``$BERTH_KUBE_BIN`` wins; otherwise the directory build.sh reports for the pinned versions;
    otherwise (berth installed without its source) the newest build in the cache.
    """
    env = os.environ.get("BERTH_KUBE_BIN")
    if env:
        return Path(env) if (Path(env) / "kube").is_file() else None
    script = build_script()
    if script:
        out = subprocess.run(
            ["bash", str(script), "--print-bin-dir"], capture_output=True, text=True, check=False
        )
        if out.returncode == 0:
            bin_dir = Path(out.stdout.strip())
            return bin_dir if (bin_dir / "kube").is_file() else None
    builds = sorted(cache_root().glob("*/bin/kube"), key=lambda p: p.stat().st_mtime, reverse=True)
    return builds[0].parent if builds else None


def build(progress: Progress = _quiet) -> Path:
    """Run build.sh (a no-op when the binaries exist), streaming its progress lines."""
    script = build_script()
    if script is None:
        raise BerthError(
            "cannot build the control plane: berth is not running from a source checkout",
            hint="clone berth and run tools/kube/build.sh, or set BERTH_KUBE_BIN to a built bin directory",
        )
    proc = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None and proc.stdout is not None
    tail: list[str] = []
    for line in proc.stderr:
        progress(line.rstrip())
        tail = [*tail[-20:], line.rstrip()]
    out = proc.stdout.read().strip()
    if proc.wait() != 0:
        raise BerthError("building the control plane failed:\n" + "\n".join(tail), hint=f"rerun {script}")
    return Path(out.splitlines()[-1])


@dataclass(frozen=True)
class NodeSpec:
    """Shape of the fake nodes: NODES spread round-robin over ZONES zones."""

    nodes: int = 3
    zones: int = 2
    gpus: int = 8
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110

    def zone_of(self, index: int) -> str:
        return f"zone-{chr(ord('a') + index % self.zones)}"

    def manifests(self) -> list[dict[str, Any]]:
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods), GPU_RESOURCE: str(self.gpus)}
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"sandbox-node-{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "kubernetes.io/hostname": f"sandbox-node-{i}",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        ZONE_LABEL: self.zone_of(i),
                        "topology.kubernetes.io/region": "sandbox",
                        "app.kubernetes.io/managed-by": MANAGED_BY,
                    },
                },
                "status": {"capacity": resources, "allocatable": resources},
            }
            for i in range(self.nodes)
        ]


def storage_class_manifest() -> dict[str, Any]:
    """Default class backed by kube-controller-manager's host-path provisioner (/tmp/hostpath_pv)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


@dataclass
class SandboxState:
    """What ``up`` recorded: enough for ``down``/``status``/``env`` in another process."""

    name: str
    state_dir: Path
    bin_dir: Path
    server: str
    kubeconfig: Path
    ports: dict[str, int]
    processes: list[ProcessRecord] = field(default_factory=list)
    started_at: float = 0.0
    ready_after_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "bin_dir": str(self.bin_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports,
            "processes": [p.to_json() for p in self.processes],
            "started_at": self.started_at,
            "ready_after_s": self.ready_after_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxState:
        return cls(
            name=str(data["name"]),
            state_dir=Path(data["state_dir"]),
            bin_dir=Path(data["bin_dir"]),
            server=str(data["server"]),
            kubeconfig=Path(data["kubeconfig"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            processes=[ProcessRecord.from_json(p) for p in data["processes"]],
            started_at=float(data["started_at"]),
            ready_after_s=data.get("ready_after_s"),
        )


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int
    running: bool
    log: str


@dataclass(frozen=True)
class SandboxStatus:
    """Result of ``status``: ``running`` only when every process lives and the API answers ready."""

    name: str
    state_dir: Path
    exists: bool
    running: bool
    api_ready: bool
    server: str | None
    kubeconfig: Path | None
    version: str | None
    processes: list[ProcessStatus]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "exists": self.exists,
            "running": self.running,
            "api_ready": self.api_ready,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "version": self.version,
            "processes": [
                {"name": p.name, "pid": p.pid, "running": p.running, "log": p.log} for p in self.processes
            ],
        }


class Sandbox:
    """One sandbox, identified by its state directory."""

    def __init__(self, name: str = "default", state_dir: Path | None = None) -> None:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"invalid sandbox name {name!r}", hint="use letters, digits and dashes")
        self.name = name
        self.state_dir = (state_dir or default_state_dir(name)).expanduser().resolve()

    # ---- state -----------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def load(self) -> SandboxState | None:
        try:
            return SandboxState.from_json(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as err:
            raise BerthError(
                f"{self.state_file}: unreadable sandbox state ({err})",
                hint=f"stop its processes by hand if any, then remove {self.state_dir}",
            ) from err

    def _save(self, state: SandboxState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        tmp.replace(self.state_file)

    # ---- up --------------------------------------------------------------------------------
    def up(
        self,
        nodes: NodeSpec | None = None,
        *,
        bin_dir: Path | None = None,
        timeout_s: float = 90.0,
        progress: Progress = _quiet,
    ) -> SandboxState:
        """Start the control plane, or return the running one unchanged (idempotent)."""
        nodes = nodes or NodeSpec()
        current = self.status()
        if current.running:
            state = self.load()
            assert state is not None
            progress(f"sandbox {self.name!r} already running at {state.server}")
            return state
        previous = self.load()
        if previous is not None and previous.ready_after_s is not None:
            return self._repair(current, timeout_s, progress)
        if current.exists:  # a start that failed half-way: nothing worth keeping
            progress(f"sandbox {self.name!r} never finished starting: starting it afresh")
            self.down()
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise BerthError("the control-plane binaries are not built", hint=_build_hint())

        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        names = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        state = SandboxState(
            name=self.name, state_dir=self.state_dir, bin_dir=bin_dir, server=server,
            kubeconfig=self.kubeconfig, ports=ports, started_at=time.time(),
        )
        self._save(state)
        try:
            self._start(state, nodes, timeout_s, progress)
        except BaseException:
            stop(state.processes)
            raise
        state.ready_after_s = round(time.monotonic() - started, 2)
        self._save(state)
        progress(f"sandbox {self.name!r} ready in {state.ready_after_s:.1f} s: {server}")
        return state

    def _start(self, state: SandboxState, nodes: NodeSpec, timeout_s: float, progress: Progress) -> None:
        deadline = time.monotonic() + timeout_s
        d = self.state_dir
        progress("generating certificates")
        pki = pki_mod.generate(d / "pki", SERVICE_IP)
        context = f"berth-sandbox-{self.name}"
        pki_mod.write_kubeconfig(self.kubeconfig, pki, "admin", state.server, context)
        for client in ("controller-manager", "scheduler", "kwok"):
            pki_mod.write_kubeconfig(d / f"{client}.kubeconfig", pki, client, state.server, context)
        kube = str(state.bin_dir / "kube")
        stages = subprocess.run([kube, "kwok-stages"], capture_output=True, text=True, check=True).stdout
        (d / "kwok-stages.yaml").write_text(stages)
        (d / "scheduler.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {"kubeconfig": str(d / "scheduler.kubeconfig"), "qps": 200, "burst": 400},
                    "leaderElection": {"leaderElect": False},
                }
            )
        )

        def launch(name: str, args: list[str]) -> ProcessRecord:
            record = spawn(name, [kube, name, *args], d / "logs" / f"{name}.log", d)
            state.processes.append(record)
            self._save(state)
            return record

        p = state.ports
        progress("starting etcd")
        etcd = launch("etcd", [
            "--name=sandbox", f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-cluster=sandbox=http://127.0.0.1:{p['etcd-peer']}",
            "--unsafe-no-fsync", "--log-level=warn",
        ])
        _wait_http(f"http://127.0.0.1:{p['etcd']}/health", None, etcd, deadline)

        progress("starting kube-apiserver")
        apiserver = launch("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
            "--bind-address=127.0.0.1", f"--secure-port={p['kube-apiserver']}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--profiling=false",
            f"--requestheader-client-ca-file={pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.client_cert('front-proxy-client')}",
            f"--proxy-client-key-file={pki.client_key('front-proxy-client')}",
        ])
        admin_ctx = _client_ssl(pki, "admin")
        _wait_http(f"{state.server}/readyz", admin_ctx, apiserver, deadline)

        progress("starting kube-controller-manager, kube-scheduler, kwok")
        kcm_kubeconfig = d / "controller-manager.kubeconfig"
        kcm = launch("kube-controller-manager", [
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={p['kube-controller-manager']}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--enable-hostpath-provisioner=true",
            # The defaults (20 QPS) make a 100-replica StatefulSet crawl; a sandbox has no neighbours.
            "--kube-api-qps=200", "--kube-api-burst=400",
            "--concurrent-statefulset-syncs=10",
        ])
        sched_kubeconfig = d / "scheduler.kubeconfig"
        scheduler = launch("kube-scheduler", [
            f"--config={d / 'scheduler.yaml'}",
            f"--authentication-kubeconfig={sched_kubeconfig}",
            f"--authorization-kubeconfig={sched_kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={p['kube-scheduler']}",
        ])
        kwok = launch("kwok", [
            f"--kubeconfig={d / 'kwok.kubeconfig'}",
            f"--config={d / 'kwok-stages.yaml'}",
            "--manage-all-nodes=true",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
        ])
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # components serve self-signed certs on /healthz
        _wait_http(f"https://127.0.0.1:{p['kube-controller-manager']}/healthz", insecure, kcm, deadline)
        _wait_http(f"https://127.0.0.1:{p['kube-scheduler']}/healthz", insecure, scheduler, deadline)

        progress(f"creating {nodes.nodes} fake nodes over {nodes.zones} zones and StorageClass {STORAGE_CLASS!r}")
        self._seed_cluster(nodes, deadline, [kcm, scheduler, kwok, apiserver, etcd], progress)

    def _seed_cluster(
        self, nodes: NodeSpec, deadline: float, watched: list[ProcessRecord], progress: Progress
    ) -> None:
        from lightkube import Client, KubeConfig
        from lightkube.codecs import from_dict
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Node, ServiceAccount

        client = Client(KubeConfig.from_file(self.kubeconfig), field_manager=MANAGED_BY)
        client.apply(from_dict(storage_class_manifest()))
        for manifest in nodes.manifests():
            client.create(from_dict(manifest))

        def ready() -> bool:
            node_list = list(client.list(Node, labels={"app.kubernetes.io/managed-by": MANAGED_BY}))
            n_ready = sum(1 for n in node_list if _node_ready(n))
            if n_ready < nodes.nodes:
                return False
            # Pods need their namespace's default ServiceAccount: proof the controllers run.
            try:
                client.get(ServiceAccount, "default", namespace="default")
            except ApiError as err:
                if err.status.code == 404:
                    return False
                raise
            return True

        progress("waiting for nodes Ready and controllers running")
        _wait(ready, deadline, watched, "nodes Ready and the default ServiceAccount")

    def _repair(self, current: SandboxStatus, timeout_s: float, progress: Progress) -> SandboxState:
        """Restart only the dead components, keeping the cluster's data (etcd) and certificates."""
        for proc in current.processes:
            if not proc.running:
                progress(f"{proc.name} is not running: starting it again")
                self.start_component(proc.name)
        state = self.load()
        assert state is not None
        ctx = _client_ssl(pki_mod.Pki(self.state_dir / "pki"), "admin")
        apiserver = next(p for p in state.processes if p.name == "kube-apiserver")
        _wait_http(f"{state.server}/readyz", ctx, apiserver, time.monotonic() + timeout_s)
        progress(f"sandbox {self.name!r} running again at {state.server}")
        return state

    def start_component(self, component: str) -> ProcessRecord:
        """Start COMPONENT again with its recorded command line (same ports, certificates, data).

        For failure tests that kill a component (e.g. SIGKILL kube-apiserver mid-apply): the new
        PID is saved in the state, so ``down`` stops it. A running component is left alone.
        """
        state = self.load()
        if state is None:
            raise BerthError(f"sandbox {self.name!r} is not running", hint="start it with `berth sandbox up`")
        index = next((i for i, p in enumerate(state.processes) if p.name == component), None)
        if index is None:
            raise UsageError(f"unknown component {component!r}", hint=f"one of: {', '.join(COMPONENTS)}")
        old = state.processes[index]
        if is_running(old):
            return old
        new = spawn(old.name, old.argv, Path(old.log), self.state_dir)
        state.processes[index] = new
        self._save(state)
        return new

    # ---- down / status ---------------------------------------------------------------------
    def down(self) -> list[int]:
        """Stop every recorded process by PID and remove the state; return the PIDs stopped."""
        state = self.load()
        if state is None:
            if self.state_dir.exists() and not any(self.state_dir.iterdir()):
                self.state_dir.rmdir()
            return []
        self._remove_volume_dirs(state)
        stopped = stop(list(reversed(state.processes)))
        left = [r.pid for r in state.processes if is_running(r)]
        if left:
            raise BerthError(f"processes {left} did not stop", hint="kill them by PID, then rerun down")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return stopped

    def _remove_volume_dirs(self, state: SandboxState) -> None:
        """Delete the host directories of this sandbox's provisioned volumes (while the API is up)."""
        if not (self.kubeconfig.exists() and all(is_running(r) for r in state.processes)):
            return
        from lightkube import Client, KubeConfig
        from lightkube.resources.core_v1 import PersistentVolume

        with contextlib.suppress(Exception):  # best effort: the sandbox is going away either way
            client = Client(KubeConfig.from_file(self.kubeconfig), timeout=5.0)  # type: ignore[arg-type]
            for pv in client.list(PersistentVolume):
                host = pv.spec.hostPath if pv.spec else None
                path = Path(host.path) if host else None
                if path and path.parent == HOSTPATH_PV_ROOT:
                    shutil.rmtree(path, ignore_errors=True)

    def status(self) -> SandboxStatus:
        state = self.load()
        if state is None:
            return SandboxStatus(self.name, self.state_dir, False, False, False, None, None, None, [])
        procs = [ProcessStatus(r.name, r.pid, is_running(r), r.log) for r in state.processes]
        version = None
        api_ready = False
        if all(p.running for p in procs) and self.kubeconfig.exists():
            ctx = _client_ssl(pki_mod.Pki(self.state_dir / "pki"), "admin")
            with contextlib.suppress(OSError, ValueError):
                api_ready = _get(f"{state.server}/readyz", ctx, 2.0) == "ok"
                version = json.loads(_get(f"{state.server}/version", ctx, 2.0)).get("gitVersion")
        running = api_ready and len(procs) == len(COMPONENTS) and all(p.running for p in procs)
        return SandboxStatus(
            self.name, self.state_dir, True, running, api_ready, state.server, state.kubeconfig, version, procs
        )

    def env(self) -> dict[str, str]:
        """Variables that point kubectl (and berth) at this sandbox; ``BERTH_KUBE_BIN`` holds kubectl."""
        state = self.load()
        if state is None:
            raise BerthError(f"sandbox {self.name!r} is not running", hint="start it with `berth sandbox up`")
        return {"KUBECONFIG": str(state.kubeconfig), "BERTH_KUBE_BIN": str(state.bin_dir)}


# ---- helpers ---------------------------------------------------------------------------------
def _client_ssl(pki: pki_mod.Pki, client: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.client_cert(client)), str(pki.client_key(client)))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None, timeout: float) -> str:
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode().strip()


def _node_ready(node: Any) -> bool:
    conditions = node.status.conditions if node.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def _failed(record: ProcessRecord, what: str) -> BerthError:
    return BerthError(
        f"{record.name} {what}; last lines of {record.log}:\n{log_tail(Path(record.log))}",
        hint="fix the cause above, then `berth sandbox down` and `berth sandbox up` again",
    )


def _wait(check: Callable[[], bool], deadline: float, watched: list[ProcessRecord], what: str) -> None:
    """Poll CHECK until true; fail early with the log tail when a watched process dies."""
    last_error: Exception | None = None
    while True:
        for record in watched:
            if not is_running(record):
                raise _failed(record, "exited during start-up")
        try:
            if check():
                return
        except Exception as err:  # connection refused, HTTP 5xx, API errors while components settle
            last_error = err
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise BerthError(
                f"sandbox start timed out waiting for {what}{detail}",
                hint=f"see the component logs in {watched[0].log.rsplit('/', 1)[0]}",
            )
        time.sleep(0.2)


def _wait_http(url: str, ctx: ssl.SSLContext | None, record: ProcessRecord, deadline: float) -> None:
    """Wait until URL answers 2xx (urllib raises for anything else, and _wait retries)."""
    _wait(lambda: _get(url, ctx, 2.0) is not None, deadline, [record], f"{record.name} ({url})")
