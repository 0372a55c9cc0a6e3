"""A real Kubernetes control plane on this machine, for trying berth and for its cluster tests.

``berth sandbox up`` starts etcd, kube-apiserver (RBAC, Pod Security admission),
kube-controller-manager (with its host-path dynamic provisioner, so StatefulSet PVCs really
bind), kube-scheduler and kwok (fake kubelets: pods become Running/Ready without containers),
all built from source by ``tools/kube/build.sh`` and bound to 127.0.0.1 on free ports; their
command lines are the table in :mod:`berth.sandbox.components`. It then creates fake GPU nodes
over several zones and a default StorageClass ``standard`` (WaitForFirstConsumer) through
berth's own client. Every process is recorded by PID in ``<state>/state.json`` and ``down``
stops exactly those.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth.contract import GPU_RESOURCE, LABEL_MANAGED_BY, LABEL_SANDBOX_NODE, LABEL_ZONE
from berth.errors import BerthError, UsageError
from berth.sandbox import pki as pki_mod
from berth.sandbox.binaries import Progress, build_hint, find_bin_dir, quiet
from berth.sandbox.components import COMPONENTS, NAMES, PORTS, SERVICE_IP, Layout
from berth.sandbox.proc import ProcessRecord, free_ports, is_running, log_tail, spawn, stop

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.sandbox.node import RealNodes

STATE_FILE = "state.json"
STORAGE_CLASS = "standard"
HOSTPATH_PV_ROOT = Path("/tmp/hostpath_pv")  # fixed by kube-controller-manager's host-path provisioner
# The sandbox's own objects (nodes, StorageClass): their managed-by label and field manager.
MANAGED_BY = "berth-sandbox"
# Components with a client kubeconfig of their own (the admin's is ``<state>/kubeconfig``).
COMPONENT_CLIENTS = ("controller-manager", "scheduler", "kwok")


def default_state_dir(name: str) -> Path:
    """Where sandbox ``name`` keeps its state, certificates, etcd data and logs by default."""
    return Path.home() / ".cache" / "berth" / "sandbox" / name


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
        """``zone-a``, ``zone-b``, … for node ``index``."""
        return f"zone-{chr(ord('a') + index % self.zones)}"

    def manifests(self) -> list[dict[str, Any]]:
        """The Node objects kwok will keep Ready."""
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
                        LABEL_SANDBOX_NODE: "kwok",
                        LABEL_ZONE: self.zone_of(i),
                        "topology.kubernetes.io/region": "sandbox",
                        LABEL_MANAGED_BY: MANAGED_BY,
                    },
                },
                "status": {"capacity": resources, "allocatable": resources},
            }
            for i in range(self.nodes)
        ]


def storage_class_manifest(provisioner: str = "kubernetes.io/host-path") -> dict[str, Any]:
    """Default class: kube-controller-manager's host-path provisioner (/tmp/hostpath_pv), or with
    real nodes the sandbox's own (``local`` PVs, which get the pod's fsGroup: berth.sandbox.provisioner)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def _plain(obj: Any, key: Callable[[str], str] = str) -> Any:
    """A dataclass as JSON data: paths as strings, nested dataclasses and lists too, keys through ``key``."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {key(f.name): _plain(getattr(obj, f.name), key) for f in fields(obj)}
    if isinstance(obj, list):
        return [_plain(item, key) for item in obj]
    return str(obj) if isinstance(obj, Path) else obj


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


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
    kubelets: int = 0  # real nodes (`up --kubelet`): berth.sandbox.node
    kube_proxy: bool = False  # `up --kube-proxy`: ClusterIPs from real pods (berth.sandbox.kubeproxy)

    def to_json(self) -> dict[str, Any]:
        """The state file's content."""
        data: dict[str, Any] = _plain(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxState:
        """Read back what :meth:`to_json` wrote."""
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
            kubelets=int(data.get("kubelets", 0)),
            kube_proxy=bool(data.get("kube_proxy", False)),
        )


@dataclass(frozen=True)
class ProcessStatus:
    """One recorded component and whether it still runs."""

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
        """For ``berth sandbox status -o json`` (camelCase keys, like every berth JSON output)."""
        data: dict[str, Any] = _plain(self, _camel)
        return data


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
        """``<state>/state.json``: the processes and ports ``up`` recorded."""
        return self.state_dir / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (system:masters)."""
        return self.state_dir / "kubeconfig"

    def load(self) -> SandboxState | None:
        """The recorded state; None when there is no sandbox here."""
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

    def _kube(self, timeout_s: float = 5.0) -> Kube:
        """berth's client on this sandbox as admin, without retries: callers poll with their own deadline."""
        from berth.kube.client import RetryPolicy, Target, connect

        return connect(Target(kubeconfig=str(self.kubeconfig)), retry=RetryPolicy(budget_s=0), timeout_s=timeout_s)

    # ---- up --------------------------------------------------------------------------------
    def up(
        self,
        nodes: NodeSpec | None = None,
        *,
        bin_dir: Path | None = None,
        timeout_s: float = 90.0,
        progress: Progress = quiet,
        kubelets: int = 0,
        kube_proxy: bool = False,
    ) -> SandboxState:
        """Start the control plane, or return the running one unchanged (idempotent).

        KUBELETS > 0 adds that many real nodes (:mod:`berth.sandbox.node`); the machine is
        checked first, and what it lacks is a :class:`berth.sandbox.node.SetupError` (exit 2).
        KUBE_PROXY adds kube-proxy (:mod:`berth.sandbox.kubeproxy`): pods reach ClusterIPs, the
        API server's among them; one such sandbox per host.
        """
        if kube_proxy and not kubelets:
            raise UsageError("--kube-proxy needs real nodes", hint="add --kubelet")
        nodes = nodes or NodeSpec()
        current = self.status()
        if current.running:
            state = self.load()
            assert state is not None
            progress(f"sandbox {self.name!r} already running at {state.server}")
            return state
        previous = self.load()
        if previous is not None and previous.ready_after_s is not None and not previous.kubelets:
            return self._repair(current, timeout_s, progress)
        if current.exists:  # a start that failed half-way (or real nodes that died): nothing worth keeping
            progress(f"sandbox {self.name!r} is not healthy: starting it afresh")
            self.down()
        bin_dir = bin_dir or find_bin_dir()
        real = self._real_nodes(kubelets, nodes, kube_proxy=kube_proxy) if kubelets else None
        if real is not None:
            real.preflight(bin_dir)
        if bin_dir is None:
            raise BerthError("the control-plane binaries are not built", hint=build_hint())
        if real is not None:
            real.reserve_subnet()  # before anything reads the gateway (the API server's advertise address)

        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        state = SandboxState(
            name=self.name,
            state_dir=self.state_dir,
            bin_dir=bin_dir,
            server=server,
            kubeconfig=self.kubeconfig,
            ports=ports,
            started_at=time.time(),
            kubelets=kubelets,
            kube_proxy=kube_proxy,
        )
        self._save(state)
        try:
            self._start(state, nodes, timeout_s, progress)
        except BaseException:
            self._stop_all(state)
            raise
        state.ready_after_s = round(time.monotonic() - started, 2)
        self._save(state)
        progress(f"sandbox {self.name!r} ready in {state.ready_after_s:.1f} s: {server}")
        return state

    def _write_config(self, state: SandboxState) -> Layout:
        """Certificates, kubeconfigs and the scheduler's and kwok's configuration files."""
        d = self.state_dir
        pki = pki_mod.generate(d / "pki", SERVICE_IP)
        context = f"berth-sandbox-{self.name}"
        pki_mod.write_kubeconfig(self.kubeconfig, pki, "admin", state.server, context)
        for client in COMPONENT_CLIENTS:
            pki_mod.write_kubeconfig(d / f"{client}.kubeconfig", pki, client, state.server, context)
        kube = str(state.bin_dir / "kube")
        stages = subprocess.run([kube, "kwok-stages"], capture_output=True, text=True, check=True).stdout
        (d / "kwok-stages.yaml").write_text(stages)
        scheduler = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(d / "scheduler.kubeconfig"), "qps": 200, "burst": 400},
            "leaderElection": {"leaderElect": False},
        }
        (d / "scheduler.yaml").write_text(json.dumps(scheduler))
        return Layout(dir=d, port=state.ports, pki=pki, server=state.server)

    def _start(self, state: SandboxState, nodes: NodeSpec, timeout_s: float, progress: Progress) -> None:
        deadline = time.monotonic() + timeout_s
        progress("generating certificates")
        layout = self._write_config(state)
        pending: list[tuple[ProcessRecord, str]] = []  # started, health not yet seen
        for component in COMPONENTS:
            progress(f"starting {component.name}")
            argv = layout.argv(state.bin_dir / "kube", component)
            if component.name == "kube-apiserver" and state.kube_proxy:
                # The `kubernetes` Service's endpoint: the relay on the bridge (no loopback allowed there).
                argv.append(f"--advertise-address={self._real_nodes(state.kubelets).gateway}")
            record = spawn(
                component.name,
                argv,
                self.state_dir / "logs" / f"{component.name}.log",
                self.state_dir,
            )
            state.processes.append(record)
            self._save(state)
            if component.health:
                pending.append((record, layout.fill(component.health)))
            if component.gate:
                self._await_health(pending, deadline)
        self._await_health(pending, deadline)
        if state.kubelets:
            self._start_real_nodes(state, nodes, layout, deadline, progress)
        progress(f"creating {nodes.nodes} fake nodes over {nodes.zones} zones and StorageClass {STORAGE_CLASS!r}")
        self._seed_cluster(nodes, deadline, list(reversed(state.processes)), progress, local_pvs=bool(state.kubelets))
        if state.kubelets:
            self._await_real_nodes(state, nodes, deadline, progress)

    # ---- real nodes (berth.sandbox.node) ---------------------------------------------------
    def _real_nodes(self, count: int, nodes: NodeSpec | None = None, *, kube_proxy: bool = False) -> RealNodes:
        from berth.sandbox.node import RealNodes

        shape = nodes or NodeSpec()
        return RealNodes(self.state_dir, self.name, count, zones=shape.zones, gpus=shape.gpus, kube_proxy=kube_proxy)

    def _start_real_nodes(
        self, state: SandboxState, nodes: NodeSpec, layout: Layout, deadline: float, progress: Progress
    ) -> None:
        def record(rec: ProcessRecord) -> None:
            state.processes.append(rec)
            self._save(state)

        def wait_http(url: str, rec: ProcessRecord) -> None:
            _wait_http(url, rec, self.kubeconfig, deadline)

        real = self._real_nodes(state.kubelets, nodes, kube_proxy=state.kube_proxy)
        real.start(
            kube=state.bin_dir / "kube",
            server=state.server,
            pki=layout.pki,
            context=f"berth-sandbox-{self.name}",
            record=record,
            wait_http=wait_http,
            progress=progress,
            deadline=deadline,
        )
        with contextlib.closing(self._kube()) as kube:
            real.seed(kube, progress)

    def _await_real_nodes(self, state: SandboxState, nodes: NodeSpec, deadline: float, progress: Progress) -> None:
        from lightkube.resources.core_v1 import Node

        real = self._real_nodes(state.kubelets, nodes)
        progress(f"waiting for {state.kubelets} real node(s) Ready")
        with contextlib.closing(self._kube()) as kube:

            def ready() -> bool:
                listed = kube.call(
                    "list nodes", lambda: list(kube.client.list(Node, labels={LABEL_SANDBOX_NODE: "kubelet"}))
                )
                return sum(1 for n in listed if _node_ready(n)) >= state.kubelets

            _wait(ready, deadline, list(reversed(state.processes)), "real nodes Ready")
            if real.gpus:
                for i in range(state.kubelets):
                    real.advertise_gpus(kube, i)

    def _stop_all(self, state: SandboxState) -> None:
        """Stop every process (real nodes first, with their containers, cgroups and bridges)."""
        if state.kubelets:
            self._real_nodes(state.kubelets, kube_proxy=state.kube_proxy).teardown(state.processes)
        stop(list(reversed(state.processes)))

    def _await_health(self, pending: list[tuple[ProcessRecord, str]], deadline: float) -> None:
        """Wait until every pending component's health URL answers; empties ``pending``."""
        for record, url in pending:
            _wait_http(url, record, self.kubeconfig, deadline)
        pending.clear()

    def _seed_cluster(
        self,
        nodes: NodeSpec,
        deadline: float,
        watched: list[ProcessRecord],
        progress: Progress,
        *,
        local_pvs: bool = False,
    ) -> None:
        from lightkube.codecs import from_dict
        from lightkube.resources.core_v1 import Node, ServiceAccount

        from berth.sandbox.provisioner import PROVISIONER

        with contextlib.closing(self._kube()) as kube:
            storage_class = from_dict(storage_class_manifest(PROVISIONER) if local_pvs else storage_class_manifest())
            kube.call(
                f"apply StorageClass {STORAGE_CLASS}",
                lambda: kube.client.apply(storage_class, field_manager=MANAGED_BY),
            )
            for manifest in nodes.manifests():
                node = from_dict(manifest)
                kube.call(
                    f"create Node {manifest['metadata']['name']}",
                    functools.partial(kube.client.create, node, field_manager=MANAGED_BY),
                )

            def ready() -> bool:
                listed = kube.call(
                    "list nodes", lambda: list(kube.client.list(Node, labels={LABEL_MANAGED_BY: MANAGED_BY}))
                )
                if sum(1 for n in listed if _node_ready(n)) < nodes.nodes:
                    return False
                # Pods need their namespace's default ServiceAccount: proof the controllers run.
                return kube.get_or_none(ServiceAccount, "default", "default") is not None

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
        apiserver = next(p for p in state.processes if p.name == "kube-apiserver")
        _wait_http(f"{state.server}/readyz", apiserver, self.kubeconfig, time.monotonic() + timeout_s)
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
            raise UsageError(f"unknown component {component!r}", hint=f"one of: {', '.join(NAMES)}")
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
        stopped = [r.pid for r in state.processes if is_running(r)]
        self._stop_all(state)
        left = [r.pid for r in state.processes if is_running(r)]
        if left:
            raise BerthError(f"processes {left} did not stop", hint="kill them by PID, then rerun down")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return stopped

    def _remove_volume_dirs(self, state: SandboxState) -> None:
        """Delete the host directories of this sandbox's provisioned volumes (while the API is up)."""
        if not (self.kubeconfig.exists() and all(is_running(r) for r in state.processes)):
            return
        from lightkube.resources.core_v1 import PersistentVolume

        with contextlib.suppress(Exception), contextlib.closing(self._kube()) as kube:
            # Best effort: the sandbox is going away either way.
            for pv in kube.call("list PersistentVolumes", lambda: list(kube.client.list(PersistentVolume))):
                host = pv.spec.hostPath if pv.spec else None
                path = Path(host.path) if host else None
                if path and path.parent == HOSTPATH_PV_ROOT:
                    shutil.rmtree(path, ignore_errors=True)

    def status(self) -> SandboxStatus:
        """Whether each recorded process runs and the API server answers ready, with its version."""
        state = self.load()
        if state is None:
            return SandboxStatus(self.name, self.state_dir, False, False, False, None, None, None, [])
        procs = [ProcessStatus(r.name, r.pid, is_running(r), r.log) for r in state.processes]
        version = None
        api_ready = False
        if all(p.running for p in procs) and self.kubeconfig.exists():
            with contextlib.suppress(BerthError, ValueError), contextlib.closing(self._kube(2.0)) as kube:
                api_ready = kube.raw_get("/readyz").text.strip() == "ok"
                version = kube.raw_get("/version").json().get("gitVersion")
        real = self._real_nodes(state.kubelets, kube_proxy=state.kube_proxy)
        expected = len(COMPONENTS) + (real.process_count() if state.kubelets else 0)
        running = api_ready and len(procs) == expected and all(p.running for p in procs)
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
def _probe_context(kubeconfig: Path) -> ssl.SSLContext:
    """TLS for health probes: the admin's client certificate, the server's not checked.

    A probe only asks a process we just started on a port we chose whether it serves yet;
    kube-controller-manager and kube-scheduler answer with self-signed certificates.
    """
    pki = pki_mod.Pki(kubeconfig.parent / "pki")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki.client_cert("admin")), str(pki.client_key("admin")))
    return ctx


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


def _wait_http(url: str, record: ProcessRecord, kubeconfig: Path, deadline: float) -> None:
    """Wait until URL answers 2xx (urllib raises for anything else, and _wait retries)."""
    ctx = _probe_context(kubeconfig)

    def answers() -> bool:
        with urllib.request.urlopen(url, context=ctx, timeout=2.0):
            return True

    _wait(answers, deadline, [record], f"{record.name} ({url})")
