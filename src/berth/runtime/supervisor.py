"""``berth run`` as the pod's supervisor (``spec.lifecycle``): completion, gang restart, phases.

One supervisor per pod runs the trainer as its child and never runs two at once: a trainer
starts only when rank 0's coordinator (:mod:`berth.runtime.gang`) says so for a new generation,
and only after the previous one was reaped. What it must remember across container restarts
lives on the pod's volume, in ``<state dir>/.berth/run.json`` (written atomically): that this
rank completed (so it never re-runs the trainer), its starts, and on rank 0 the gang's state.
What ``berth status`` shows it publishes on its own pod (annotation ``berth.dev/rank``) and,
rank 0, on the StatefulSet (``berth.dev/run``), through :mod:`berth.runtime.kubeapi`.

The trainer's env is the rendezvous env plus ``BERTH_GENERATION``, ``BERTH_GANG_RANKS`` (the
pods this generation runs: all but those that completed), ``BERTH_GANG_ADDR``,
``BERTH_RESUME_STEP`` and ``BERTH_AGREED_STEPS`` (steps every rank of the gang has, newest
first); ``berth.runtime.gang.agreement()`` lets ``CheckpointManager.restore`` agree through the
coordinator. SIGTERM is forwarded to the trainer's process group (``berth.runtime.preempt``
tells the training loop to save now).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from berth.contract import ANNOTATION_RANK_STATE, ANNOTATION_RUN_STATE, ENV_LIFECYCLE, STOP_MARGIN_S
from berth.errors import BerthError, UsageError
from berth.runtime import gang, kubeapi
from berth.runtime.manifest import CorruptCheckpoint
from berth.runtime.store import read_complete, scan_steps

STATE_FILE = ".berth/run.json"
LAST_LINE_MAX = 300
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.05, 1.0  # retries of the connection to the coordinator


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    try:
        return int(raw) if raw else default
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not an integer") from None


@dataclass
class Config:
    """What the rendered pod tells its supervisor, all through env (docs/lifecycle.md lists it)."""

    rank: int
    world: int
    name: str
    namespace: str
    pod: str
    state_dir: Path
    checkpoint_dir: Path | None
    on_complete: str
    max_restarts: int
    backoff: float
    stop_grace: float
    termination_grace: float
    gang_host: str
    gang_port: int
    heartbeat_timeout: float
    revision: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str], rank: int, coordinator_host: str) -> Config:
        world = _env_int(environ, "BERTH_REPLICAS", 1)
        name = environ.get("BERTH_NAME") or "berth"
        on_complete = environ.get(ENV_LIFECYCLE) or "scaleToZero"
        if on_complete not in ("scaleToZero", "idle"):
            raise UsageError(f"BERTH_LIFECYCLE={on_complete!r}: expected scaleToZero or idle")
        state = environ.get("BERTH_STATE_DIR") or environ.get("BERTH_CHECKPOINT_DIR")
        if not state:
            raise UsageError("no directory for the run state", hint="set BERTH_STATE_DIR to a directory on the volume")
        ckpt = environ.get("BERTH_CHECKPOINT_DIR")
        return cls(
            rank=rank,
            world=world,
            name=name,
            namespace=environ.get("BERTH_NAMESPACE") or environ.get("POD_NAMESPACE") or "default",
            pod=environ.get("POD_NAME") or f"{name}-{rank}",
            state_dir=Path(state),
            checkpoint_dir=Path(ckpt) if ckpt else None,
            on_complete=on_complete,
            max_restarts=_env_int(environ, "BERTH_MAX_RESTARTS", 3),
            backoff=float(_env_int(environ, "BERTH_RESTART_BACKOFF", 10)),
            stop_grace=float(_env_int(environ, "BERTH_STOP_GRACE", 30)),
            termination_grace=float(_env_int(environ, "BERTH_TERMINATION_GRACE", 600)),
            gang_host=environ.get("BERTH_GANG_HOST") or coordinator_host,
            gang_port=_env_int(environ, "BERTH_GANG_PORT", 2223),
            heartbeat_timeout=float(environ.get("BERTH_HEARTBEAT_TIMEOUT") or 10),
            revision=environ.get("BERTH_REVISION") or "",
        )


# -- the state on the volume ------------------------------------------------------------------------


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON: readers (and a crash) see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps(data, indent=1, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_state(path: Path) -> dict[str, Any]:
    """The run state of this rank, empty when there is none (or it is unreadable: start afresh)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def committed_steps(checkpoint_dir: Path | None) -> list[int]:
    """Steps whose shards of every rank found in ``checkpoint_dir`` are complete (cheap: no data read)."""
    if checkpoint_dir is None:
        return []
    found = scan_steps(checkpoint_dir)
    ranks = {r for shards in found.values() for r in shards}
    out = []
    for step, shards in found.items():
        if set(shards) != ranks:
            continue
        try:
            for shard in shards.values():
                read_complete(shard)
        except CorruptCheckpoint:
            continue
        out.append(step)
    return sorted(out)


# -- publishing through the API, off the supervisor's path --------------------------------------------


class Publisher:
    """Latest-value-wins patches in a thread: the API being slow or refusing never blocks training."""

    def __init__(self, api: kubeapi.Api | None, cfg: Config) -> None:
        self.api, self.cfg = api, cfg
        self._cv = threading.Condition()
        self._rank: dict[str, Any] | None = None
        self._run: dict[str, Any] | None = None
        self._scale = False
        self._busy = False
        if api is not None:
            threading.Thread(target=self._loop, name="berth-publish", daemon=True).start()

    def rank(self, data: dict[str, Any]) -> None:
        with self._cv:
            self._rank = data
            self._cv.notify()

    def run(self, data: dict[str, Any], *, scale_to_zero: bool = False) -> None:
        with self._cv:
            self._run = data
            self._scale = self._scale or scale_to_zero
            self._cv.notify()

    def flush(self, timeout: float) -> None:
        """Wait until nothing is pending (before an exit), at most ``timeout`` seconds."""
        if self.api is None:
            return
        with self._cv:
            self._cv.wait_for(lambda: not (self._rank or self._run or self._scale or self._busy), timeout)

    def _loop(self) -> None:
        assert self.api is not None
        cfg = self.cfg
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._rank or self._run or self._scale))
                rank, run, scale = self._rank, self._run, self._scale
                self._rank, self._run, self._scale, self._busy = None, None, False, True
            if rank is not None:
                self.api.annotate_pod(cfg.namespace, cfg.pod, {ANNOTATION_RANK_STATE: _compact(rank)})
            if run is not None:
                self.api.annotate_statefulset(cfg.namespace, cfg.name, {ANNOTATION_RUN_STATE: _compact(run)})
            if scale:
                self.api.scale(cfg.namespace, cfg.name, 0)
            with self._cv:
                self._busy = False
                self._cv.notify_all()


def _compact(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


# -- the supervisor ----------------------------------------------------------------------------------


class Supervisor:
    """One pod's supervisor: a single event loop (gang messages, trainer exits, SIGTERM)."""

    def __init__(self, cfg: Config, command: Sequence[str], env: Mapping[str, str], api: kubeapi.Api | None) -> None:
        self.cfg, self.command, self.env = cfg, list(command), dict(env)
        self.state_path = cfg.state_dir / STATE_FILE
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.boot = uuid.uuid4().hex[:12]
        self.trainer: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None
        self.last_line: str | None = None
        self.generation = 0
        self.sock: socket.socket | None = None
        self.sock_lock = threading.Lock()
        self.publisher = Publisher(api, cfg)
        self.coordinator: gang.Coordinator | None = None
        self.phase = "Starting"
        self.closing = False
        # The main loop and, on rank 0, the coordinator's thread both change and save the state:
        # one at a time, so a writer that snapshotted earlier never renames its file over a newer one.
        self.state_lock = threading.Lock()
        state = read_state(self.state_path)
        if state.get("revision", "") != cfg.revision:
            state = {}  # another pod template: a new run
        self.state: dict[str, Any] = {
            "rank": cfg.rank,
            "revision": cfg.revision,
            "completed": bool(state.get("completed")),
            "starts": int(state.get("starts") or 0),
            "exitCode": state.get("exitCode"),
            "lastLine": state.get("lastLine"),
            "gang": state.get("gang") or {},
            # The last SIGTERM's stop, measured by this rank's previous pod: published again for doctor.
            "lastStopSeconds": state.get("lastStopSeconds"),
        }
        if self.state["completed"]:
            self.phase = "Succeeded"

    def log(self, line: str) -> None:
        print(f"berth run [rank {self.cfg.rank}]: {line}", file=sys.stderr, flush=True)

    def save(self, **changes: Any) -> None:
        """Apply ``changes`` to the state and write it, both under :attr:`state_lock`."""
        with self.state_lock:
            self.state.update(changes)
            write_atomic(self.state_path, self.state)

    def publish_rank(self) -> None:
        steps = committed_steps(self.cfg.checkpoint_dir)
        self.publisher.rank(
            {
                "phase": self.phase,
                "restarts": max(int(self.state["starts"]) - 1, 0),
                "step": steps[-1] if steps else None,
                "exitCode": self.state["exitCode"],
                "generation": self.generation,
                "lastLine": self.state["lastLine"],
                "lastStopSeconds": self.state.get("lastStopSeconds"),
            }
        )

    # -- rank 0: the coordinator ----------------------------------------------------------------

    def _start_coordinator(self) -> None:
        cfg = self.cfg

        def persist(run: gang.RunState) -> None:
            self.save(gang=run.to_json())

        def publish(run: gang.RunState) -> None:
            data = {**run.to_json(), "revision": cfg.revision, "replicas": cfg.world}
            self.publisher.run(data, scale_to_zero=run.terminal and cfg.on_complete == "scaleToZero")

        coord = gang.Coordinator(
            cfg.world,
            gang.RunState.from_json(self.state["gang"]),
            max_restarts=cfg.max_restarts,
            backoff=cfg.backoff,
            persist=persist,
            publish=publish,
            heartbeat_timeout=cfg.heartbeat_timeout,
            log=lambda line: self.log(f"gang: {line}"),
        )
        coord.serve("" if cfg.gang_host not in ("127.0.0.1", "localhost") else cfg.gang_host, cfg.gang_port)
        publish(coord.state)
        self.coordinator = coord

    # -- the connection to the coordinator --------------------------------------------------------

    def _connect_loop(self) -> None:
        """Keep one connection to the coordinator; retry soon after a loss (rank 0's restart is
        what every rank waits for), backing off to a second while it stays away."""
        host = "127.0.0.1" if self.cfg.rank == 0 else self.cfg.gang_host
        delay = RECONNECT_MIN_S
        while not self.closing:
            try:
                sock = socket.create_connection((host, self.cfg.gang_port), timeout=5)
            except OSError:
                time.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            # The coordinator beats every second: silence this long is a lost rank 0 (a partition
            # closes no connection), and the trainer stops as it would on a closed one.
            sock.settimeout(self.cfg.heartbeat_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.events.put(("connected", sock))  # the event loop says hello, then starts our heartbeat
            heard = False
            for msg in gang.lines(sock):
                heard = True
                self.events.put(("msg", (sock, msg)))
            self.events.put(("lost", sock))
            sock.close()
            delay = RECONNECT_MIN_S if heard else min(delay * 2, RECONNECT_MAX_S)
            time.sleep(delay)

    def _heartbeat(self, sock: socket.socket) -> None:
        while gang.send(sock, {"op": "hb"}, self.sock_lock):
            time.sleep(gang.HEARTBEAT_S)

    def _send(self, msg: dict[str, Any]) -> None:
        if self.sock is not None:
            gang.send(self.sock, msg, self.sock_lock)

    def _steps(self) -> list[int]:
        return gang.offer(committed_steps(self.cfg.checkpoint_dir))

    # -- the trainer ----------------------------------------------------------------------------

    def _start_trainer(self, gen: int, agreed: list[int], ranks: list[int]) -> None:
        env = {
            **self.env,
            "BERTH_GENERATION": str(gen),
            "BERTH_GANG_RANKS": ",".join(str(r) for r in ranks),
            "BERTH_GANG_ADDR": f"{self.cfg.gang_host}:{self.cfg.gang_port}",
            "BERTH_RESUME_STEP": str(agreed[0]) if agreed else "",
            "BERTH_AGREED_STEPS": ",".join(str(s) for s in agreed[:64]),
        }
        self.save(starts=int(self.state["starts"]) + 1)  # before the start: a crash right after still counts it
        self.last_line = None
        self.generation = gen
        try:
            proc = subprocess.Popen(
                self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0
            )
        except OSError as err:
            self.log(f"cannot run {self.command[0]!r}: {err.strerror}")
            self.events.put(("exit", 127))
            return
        self.trainer = proc
        assert proc.stdout is not None
        self.reader = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self.reader.start()
        self.phase = "Running"
        self.log(f"generation {gen}: trainer started (pid {proc.pid}), resume step {env['BERTH_RESUME_STEP'] or '-'}")
        self.publish_rank()

    def _pump(self, stream: IO[bytes]) -> None:
        out = sys.stdout.buffer
        for raw in iter(stream.readline, b""):
            with contextlib.suppress(OSError, ValueError):
                out.write(raw)
                out.flush()
            text = raw.decode(errors="replace").strip()
            if text:
                self.last_line = text[:LAST_LINE_MAX]

    def _reap(self) -> int | None:
        """Reap every exited child (we may be PID 1); the trainer's exit code when it ended."""
        code = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.trainer is not None and pid == self.trainer.pid:
                rc = os.waitstatus_to_exitcode(status)
                self.trainer.returncode = rc
                code = 128 - rc if rc < 0 else rc
        return code

    def _finish_trainer(self) -> None:
        """After the trainer's leader exited: kill what is left of its group, drain its output."""
        if self.trainer is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.trainer.pid, signal.SIGKILL)
        if self.reader is not None:
            self.reader.join(timeout=5)
        self.trainer, self.reader = None, None

    def _stop_trainer(self, grace: float) -> None:
        """SIGTERM the trainer's group, SIGKILL after ``grace``; returns once it is reaped."""
        proc = self.trainer
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self._reap() is None and proc.returncode is None:
            if time.monotonic() >= deadline:
                self.log(f"trainer did not stop within {grace:.0f}s: SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.05)
        self._finish_trainer()

    # -- the event loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM; the exit code of the container."""
        signal.signal(signal.SIGTERM, lambda *_: self.events.put(("term", None)))
        signal.signal(signal.SIGINT, lambda *_: self.events.put(("term", None)))
        # A trainer's exit wakes the loop at once (reaped below) instead of at the next tick.
        signal.signal(signal.SIGCHLD, lambda *_: self.events.put(("child", None)))
        self.save()
        if self.cfg.rank == 0:
            self._start_coordinator()
        self.publish_rank()
        threading.Thread(target=self._connect_loop, name="berth-member", daemon=True).start()
        while True:
            try:
                kind, value = self.events.get(timeout=0.2)
            except queue.Empty:
                kind, value = "tick", None
            if kind == "term":
                return self._terminate()
            code = self._reap()
            if code is not None:
                self._trainer_exited(code)
            if kind == "exit":
                self._trainer_exited(int(value))
            elif kind == "connected":
                self._connected(value)
            elif kind == "lost" and value is self.sock:
                self.sock = None
                if self.trainer is not None:
                    self.log("lost the gang coordinator: stopping the trainer")
                    self._stop_trainer(self.cfg.stop_grace)
                if self.phase not in ("Succeeded", "Failed"):
                    self.phase = "Restarting"
                    self.publish_rank()
            elif kind == "msg" and value[0] is self.sock:
                self._message(value[1])

    def _connected(self, sock: socket.socket) -> None:
        self.sock = sock
        if self.trainer is not None:  # cannot happen (lost comes first), but never two trainers
            self._stop_trainer(self.cfg.stop_grace)
        self._send(
            {
                "op": "hello",
                "rank": self.cfg.rank,
                "boot": self.boot,
                "completed": self.state["completed"],
                "steps": self._steps(),
            }
        )
        # Only now: a heartbeat sent before the hello made the coordinator drop the connection, and
        # on a loaded node that race cost every reconnect after rank 0's restart seconds of retries.
        threading.Thread(target=self._heartbeat, args=(sock,), name="berth-heartbeat", daemon=True).start()

    def _message(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "start":
            gen = int(msg["gen"])
            if self.cfg.rank not in msg.get("ranks", []):
                return
            if self.state["completed"]:  # the coordinator missed it: say so, never run the trainer again
                self._send(
                    {"op": "exit", "gen": gen, "code": 0, "line": self.state["lastLine"], "steps": self._steps()}
                )
                return
            if self.trainer is not None:
                self._stop_trainer(self.cfg.stop_grace)
            self._start_trainer(gen, [int(s) for s in msg.get("agreed") or []], [int(r) for r in msg["ranks"]])
        elif op == "stop":
            if self.trainer is not None:
                self.log(f"gang stop of generation {msg.get('gen')}: stopping the trainer")
                self._stop_trainer(self.cfg.stop_grace)
            if not self.state["completed"]:
                self.phase = "Restarting"
                self.publish_rank()
            self._send({"op": "stopped", "gen": int(msg["gen"]), "steps": self._steps()})
        elif op == "done":
            self.phase = "Succeeded"
            self.log("every rank completed: the run Succeeded")
            self.publish_rank()
        elif op == "failed":
            if self.trainer is not None:
                self._stop_trainer(self.cfg.stop_grace)
            self.phase = "Failed"
            self.log(f"the run Failed: rank {msg.get('rank')} exited {msg.get('code')}: {msg.get('line')}")
            self.publish_rank()

    def _trainer_exited(self, code: int) -> None:
        if self.trainer is None and code != 127:
            return
        self._finish_trainer()
        if code == 0:
            self.phase = "Succeeded"
            self.log("trainer exited 0: this rank is complete")
        else:
            self.phase = "Restarting"
            self.log(f"trainer exited {code}" + (f": {self.last_line}" if self.last_line else ""))
        # completed: on the volume before anyone hears of it
        self.save(exitCode=code, lastLine=self.last_line, completed=self.state["completed"] or code == 0)
        self.publish_rank()
        self._send({"op": "exit", "gen": self.generation, "code": code, "line": self.last_line, "steps": self._steps()})

    def _terminate(self) -> int:
        """SIGTERM (pod delete, drain, preemption): forward it, wait for the trainer's final save."""
        self.closing = True
        training = self.trainer is not None
        # The coordinator hears of it before the trainer does: the peers' trainers may see this one
        # vanish (a broken collective) and exit, and that is a stop with the gang, not a failure.
        self._send({"op": "leaving", "gen": self.generation})
        if training:
            self.log("SIGTERM: forwarding to the trainer")
            # Never completion: whatever it exits with now, it was stopped (the next start resumes).
            started = time.monotonic()
            self._stop_trainer(max(self.cfg.termination_grace - STOP_MARGIN_S, 1))
            self._measured_stop(time.monotonic() - started)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        if self.coordinator is not None:
            self.coordinator.close()
        self.publisher.flush(3)
        return 143 if training else 0

    def _measured_stop(self, took: float) -> None:
        """Record how long the final save took (``lastStopSeconds`` in run.json) and say when the
        grace period was tight: past half of it, a slower volume or a bigger state is SIGKILLed mid-save."""
        grace = self.cfg.termination_grace
        self.save(lastStopSeconds=round(took, 1))
        self.publish_rank()  # doctor compares it with the grace period; the next pod republishes it
        if took > grace / 2:
            self.log(
                f"the trainer took {took:.0f}s of the {grace:.0f}s grace period to stop: raise "
                "terminationGracePeriodSeconds or set lifecycle.checkpointSize (docs/lifecycle.md)"
            )
        else:
            self.log(f"the trainer stopped {took:.1f}s after SIGTERM (grace period {grace:.0f}s)")


def supervise(command: Sequence[str], env: Mapping[str, str], rank: int, coordinator_host: str) -> int:
    """Run ``command`` under the supervisor; the container's exit code."""
    if not command:
        raise UsageError("no command to run", hint="berth run -- python train.py")
    cfg = Config.from_env(env, rank, coordinator_host)
    if cfg.rank >= cfg.world:
        raise BerthError(f"rank {cfg.rank} is outside 0..{cfg.world - 1}")
    return Supervisor(cfg, command, env, kubeapi.from_env(env)).run()
