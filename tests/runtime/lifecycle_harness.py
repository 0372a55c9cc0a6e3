"""Pods as local processes: the rendered trainer container's command and env, tmp dirs as its volumes.

Until the sandbox has a real kubelet node, this is the pod: ``LocalGang`` renders a spec with
``berth render``'s own code, takes the StatefulSet's trainer container as it is (command, env,
fieldRefs resolved as the kubelet resolves them), maps each volume's mountPath to a directory of
its own per rank, and points peers at 127.0.0.1 (``BERTH_GANG_HOST``; each rank would have its own
IP in a cluster). A "container" is a session: killing it kills every process in it and waits until
none is left, as the kubelet does before it restarts a container (restartPolicy Always).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.render import render_all
from berth.spec.model import TrainingCluster

TRAINER = Path(__file__).with_name("lifecycle_trainer.py")
VENV_BIN = Path(sys.executable).parent


def spec(
    name: str, replicas: int, lifecycle: dict[str, Any], namespace: str = "train", **extra: Any
) -> TrainingCluster:
    return TrainingCluster.model_validate(spec_doc(name, replicas, lifecycle, namespace, **extra))


def spec_doc(name: str, replicas: int, lifecycle: dict[str, Any], namespace: str, **extra: Any) -> dict[str, Any]:
    """The spec the lifecycle tests run: pytorch, one checkpoint volume per pod, ``lifecycle`` as given."""
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "framework": "pytorch",
            "replicas": replicas,
            "image": "python:3.12",
            "command": [sys.executable, str(TRAINER)],
            "storageClasses": {"standard": {"existing": True, "tier": "hot"}},
            "volumes": {"checkpoints": {"mountPath": "/mnt/ckpt", "size": "1Gi", "storageClass": "standard"}},
            "terminationGracePeriodSeconds": 30,
            "lifecycle": lifecycle,
            **extra,
        },
    }


def _sessions() -> dict[int, list[int]]:
    """Live (not zombie) processes by session id, from one pass over /proc."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out.setdefault(int(fields[3]), []).append(int(entry))
    return out


def _session_pids(sid: int) -> list[int]:
    return _sessions().get(sid, [])


def _is_trainer(pid: int) -> bool:
    try:
        return TRAINER.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class LocalGang:
    """``replicas`` pods of one rendered StatefulSet as local process sessions."""

    def __init__(
        self, root: Path, cluster: TrainingCluster, port: int, test_env: dict[str, str], revision: str | None = None
    ) -> None:
        self.root, self.cluster, self.port = root, cluster, port
        self.revision = revision or f"{cluster.name}-rev1"  # the pods' controller-revision-hash label
        sts = next(o for o in render_all(cluster) if o["kind"] == "StatefulSet")
        pod = sts["spec"]["template"]["spec"]
        self.container = next(c for c in pod["containers"] if c["name"] == "trainer")
        self.mounts = {m["mountPath"]: m["name"] for m in self.container.get("volumeMounts", [])}
        self.replicas = cluster.spec.replicas
        self.journal = root / "journal"
        self.journal.mkdir(parents=True, exist_ok=True)
        self.test_env = {
            **test_env,
            "TEST_JOURNAL": str(self.journal),
            "TEST_VOLUMES": ",".join(self.env_for(r)["BERTH_CHECKPOINT_DIR"] for r in range(self.replicas)),
        }
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.container_restarts = dict.fromkeys(range(self.replicas), 0)

    def volume(self, rank: int, mount_path: str) -> Path:
        return self.root / f"pod-{rank}" / str(self.mounts[mount_path])

    def _path(self, rank: int, value: str) -> str:
        for mount in sorted(self.mounts, key=len, reverse=True):
            if value == mount or value.startswith(mount + "/"):
                return str(self.volume(rank, mount)) + value[len(mount) :]
        return value

    def env_for(self, rank: int) -> dict[str, str]:
        """The container's env as the kubelet gives it to pod ``rank``, volumes mapped to local dirs."""
        name = self.cluster.name
        fields = {
            "metadata.name": f"{name}-{rank}",
            "metadata.namespace": self.cluster.namespace,
            "metadata.labels['apps.kubernetes.io/pod-index']": str(rank),
            "metadata.labels['controller-revision-hash']": self.revision,
        }
        env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(self.root)}
        for item in self.container["env"]:
            if "value" in item:
                env[item["name"]] = self._path(rank, item["value"])
            else:
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        # Local stand-ins for what differs between pods on one host: the peers' addresses and ports.
        env.update({"BERTH_GANG_HOST": "127.0.0.1", "BERTH_GANG_PORT": str(self.port), "BERTH_METRICS_PORT": ""})
        return env

    def start(self, rank: int) -> None:
        for mount in self.mounts:
            self.volume(rank, mount).mkdir(parents=True, exist_ok=True)
        log = (self.root / f"pod-{rank}.log").open("ab")
        self.procs[rank] = subprocess.Popen(
            self.container["command"],
            env={**self.env_for(rank), **self.test_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start_all(self) -> None:
        for rank in range(self.replicas):
            self.start(rank)

    def kill_container(self, rank: int) -> None:
        """SIGKILL every process of the container and wait until they are gone (the runtime's stop)."""
        proc = self.procs[rank]
        deadline = time.monotonic() + 10
        while pids := _session_pids(proc.pid):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise AssertionError(f"container {rank}: processes {pids} survive SIGKILL")
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def trainer_pids(self, rank: int) -> list[int]:
        proc = self.procs[rank]
        return [pid for pid in _session_pids(proc.pid) if pid != proc.pid and _is_trainer(pid)]

    def trainers(self) -> dict[int, list[int]]:
        """Every rank's live trainer processes (one pass over /proc: cheap enough to poll)."""
        sessions = _sessions()
        return {
            rank: [pid for pid in sessions.get(proc.pid, []) if pid != proc.pid and _is_trainer(pid)]
            for rank, proc in self.procs.items()
        }

    def kubelet(self) -> None:
        """Restart containers whose supervisor exited (restartPolicy Always)."""
        for rank, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.kill_container(rank)
                self.container_restarts[rank] += 1
                self.start(rank)

    def state(self, rank: int) -> dict[str, Any]:
        path = self.volume(rank, "/mnt/ckpt") / ".berth" / "run.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def run_phase(self) -> str | None:
        phase = self.state(0).get("gang", {}).get("phase")
        return None if phase is None else str(phase)

    def wait_for(self, what: Callable[[], bool], timeout: float, *, kubelet: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; run state: {self.state(0).get('gang')}\n{self.logs()}")
            if kubelet:
                self.kubelet()
            time.sleep(0.05)

    def events(self) -> list[dict[str, Any]]:
        path = self.journal / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(
            f"--- pod {r}\n" + (self.root / f"pod-{r}.log").read_text(errors="replace")[-3000:]
            for r in range(self.replicas)
        )

    def stop(self) -> None:
        for rank in self.procs:
            self.kill_container(rank)
