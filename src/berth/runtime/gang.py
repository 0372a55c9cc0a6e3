"""The gang: rank 0's supervisor coordinates every rank's supervisor over one TCP connection each.

Why this signal (docs/lifecycle.md has the long form): the supervisors already share the
training network and rank 0's stable DNS name, so a connection per rank to rank 0 detects a
peer that goes away (EOF or no heartbeat for ``heartbeat_timeout``) and one that restarts
(a new hello with a new boot id) within seconds, without the API server on the critical path
and without RBAC to watch pods. The coordinator's decisions carry a **generation** number,
persisted on rank 0's volume before anyone acts on it: a trainer only starts for the current
generation, and late messages of an earlier one are ignored.

A trainer that exits non-zero while its generation runs stops the gang at once, but whether it
**failed** is decided only when the gang has stopped: if a peer is lost, restarts or says it is
``leaving`` (SIGTERM) before every rank reported back, the exit was the peer's loss seen through
a collective first (the trainer's NCCL/gloo connection broke before the coordinator heard of the
loss), and it is counted as a stop with the gang, not a failure: no back-off, no ``maxRestarts``.

Wire: one JSON object per line. Member → coordinator: ``hello`` (rank, boot, completed,
steps), ``hb``, ``exit`` (gen, code, line, steps), ``stopped`` (gen, steps), ``leaving`` (gen:
its pod got SIGTERM; sent before the trainer is signalled). Coordinator →
member: ``start`` (gen, ranks, agreed), ``stop`` (gen), ``done``, ``failed`` (rank, code, line),
``hb``. A second kind of connection, ``put``/``get``, is the board the trainers' checkpoint
agreement polls (:func:`agreement`), so ranks agree on a step with the existing
:class:`~berth.runtime.agree.PollingAgreement`.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from berth.runtime.agree import PollingAgreement, intersect

HEARTBEAT_S = 1.0
MAX_BACKOFF_S = 300.0

Message = dict[str, Any]


def send(sock: socket.socket, msg: Message, lock: threading.Lock | None = None) -> bool:
    """Write one message; False when the connection is gone."""
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
    try:
        if lock is None:
            sock.sendall(data)
        else:
            with lock:
                sock.sendall(data)
        return True
    except OSError:
        return False


def lines(sock: socket.socket) -> Iterator[Message]:
    """Messages read from ``sock`` until EOF or an error (a generator)."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            try:
                msg = json.loads(raw)
            except ValueError:
                return  # not our protocol: drop the connection
            if isinstance(msg, dict):
                yield msg


@dataclass
class _Conn:
    sock: socket.socket
    rank: int
    boot: str
    last_seen: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    steps: list[int] = field(default_factory=list)
    running: bool = False  # this rank's trainer of the current generation may be running
    leaving: bool = False  # its pod got SIGTERM: it goes away, never part of a next generation

    def send(self, msg: Message) -> bool:
        return send(self.sock, msg, self.lock)


@dataclass(frozen=True)
class _Exit:
    """A trainer's non-zero exit whose cause is not known yet (a failure, or a peer's loss seen first)."""

    rank: int
    code: int
    line: str | None


@dataclass
class RunState:
    """What the coordinator persists (rank 0's ``.berth/run.json``, key ``gang``) and publishes."""

    phase: str = "Starting"  # Starting | Running | Restarting | Succeeded | Failed
    generation: int = 0
    restarts: int = 0
    failures: int = 0
    completed: list[int] = field(default_factory=list)
    reason: str | None = None
    failed_rank: int | None = None
    exit_code: int | None = None
    last_line: str | None = None
    step: int | None = None  # the step the current generation resumed from

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "generation": self.generation,
            "restarts": self.restarts,
            "failures": self.failures,
            "completed": sorted(self.completed),
            "reason": self.reason,
            "failedRank": self.failed_rank,
            "exitCode": self.exit_code,
            "lastLine": self.last_line,
            "resumedFrom": self.step,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunState:
        return cls(
            phase=str(data.get("phase") or "Starting"),
            generation=int(data.get("generation") or 0),
            restarts=int(data.get("restarts") or 0),
            failures=int(data.get("failures") or 0),
            completed=[int(r) for r in data.get("completed") or []],
            reason=data.get("reason"),
            failed_rank=data.get("failedRank"),
            exit_code=data.get("exitCode"),
            last_line=data.get("lastLine"),
            step=data.get("resumedFrom"),
        )

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


class Coordinator:
    """Rank 0's side: one state machine fed by every member's connection, decisions by generation.

    ``persist`` is called with the state before any decision is sent (so a restarted rank 0
    never reuses a generation), ``publish`` after every phase change (the API annotation).
    """

    def __init__(
        self,
        world: int,
        state: RunState,
        *,
        max_restarts: int,
        backoff: float,
        persist: Callable[[RunState], None],
        publish: Callable[[RunState], None] = lambda state: None,
        heartbeat_timeout: float = 10.0,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.world, self.state = world, state
        self.max_restarts, self.backoff = max_restarts, backoff
        self.persist, self.publish, self.log = persist, publish, log
        self.heartbeat_timeout = heartbeat_timeout
        self.conns: dict[int, _Conn] = {}
        self.events: queue.SimpleQueue[tuple[str, _Conn | None, Message]] = queue.SimpleQueue()
        self.board: dict[str, str] = {}
        self.board_lock = threading.Lock()
        self.ready_at = 0.0  # back-off: no start before this monotonic time
        self.suspect: _Exit | None = None  # the exit that stopped the gang, until it is attributed
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        if state.phase in ("Running", "Restarting"):
            # A restarted rank 0: whatever ran is gone with our connections; start a new generation.
            state.phase = "Starting"

    # -- network --------------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> None:
        """Listen on ``host:port`` and run the state machine, each in a daemon thread."""
        server = socket.create_server((host, port), reuse_port=False, backlog=128)
        server.settimeout(0.5)
        self._server = server
        threading.Thread(target=self._accept, name="berth-gang-accept", daemon=True).start()
        threading.Thread(target=self.loop, name="berth-gang", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns.values()):
            conn.sock.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._read, args=(sock,), daemon=True).start()

    def _read(self, sock: socket.socket) -> None:
        conn: _Conn | None = None
        try:
            for msg in lines(sock):
                op = msg.get("op")
                if op in ("put", "get"):
                    self._board(sock, msg)
                    continue
                if op == "hello" and conn is None:
                    conn = _Conn(sock, int(msg["rank"]), str(msg.get("boot")), time.monotonic())
                if conn is None:
                    if op == "hb":
                        continue  # a beat that overtook its hello: harmless, the hello follows
                    return
                conn.last_seen = time.monotonic()
                self.events.put(("msg", conn, msg))
        finally:
            if conn is not None:
                self.events.put(("lost", conn, {}))
            sock.close()

    def _board(self, sock: socket.socket, msg: Message) -> None:
        with self.board_lock:
            if msg["op"] == "put":
                self.board[str(msg["key"])] = str(msg["data"])
                reply: Message = {"ok": True}
            else:
                reply = {"data": self.board.get(str(msg["key"]))}
        send(sock, reply)

    # -- state machine ----------------------------------------------------------------------------

    def loop(self) -> None:
        """Process events until closed; also checks heartbeats and the back-off timer."""
        last_hb = 0.0
        while not self._stop.is_set():
            try:
                kind, conn, msg = self.events.get(timeout=0.2)
                self.handle(kind, conn, msg)
            except queue.Empty:
                pass
            now = time.monotonic()
            if now - last_hb >= HEARTBEAT_S:
                last_hb = now
                for c in list(self.conns.values()):
                    c.send({"op": "hb"})
                    if now - c.last_seen > self.heartbeat_timeout:
                        self.log(f"rank {c.rank}: no heartbeat for {self.heartbeat_timeout:.0f}s")
                        c.sock.close()  # its reader reports it lost
            self.tick()

    def _set_phase(self, phase: str) -> None:
        if self.state.phase != phase:
            self.state.phase = phase
            self.persist(self.state)
            self.publish(self.state)

    def _broadcast(self, msg: Message) -> None:
        for c in list(self.conns.values()):
            c.send(msg)

    def _terminal_msg(self) -> Message:
        s = self.state
        if s.phase == "Succeeded":
            return {"op": "done"}
        return {"op": "failed", "rank": s.failed_rank, "code": s.exit_code, "line": s.last_line}

    def handle(self, kind: str, conn: _Conn | None, msg: Message) -> None:
        assert conn is not None
        s = self.state
        if kind == "lost":
            if self.conns.get(conn.rank) is conn:
                del self.conns[conn.rank]
                self.log(f"rank {conn.rank}: connection lost")
                self._lost(conn.rank, f"rank {conn.rank} went away")
            return
        op = msg.get("op")
        if "steps" in msg:
            conn.steps = [int(x) for x in msg["steps"]]
        if op == "leaving":
            if self.conns.get(conn.rank) is conn and not conn.leaving:
                conn.leaving = True
                self.log(f"rank {conn.rank}: leaving (SIGTERM)")
                self._lost(conn.rank, f"rank {conn.rank} is going away (SIGTERM)")
            return
        if op == "hello":
            old = self.conns.get(conn.rank)
            self.conns[conn.rank] = conn
            if old is not None and old is not conn:
                old.sock.close()
                self._lost(conn.rank, f"rank {conn.rank} restarted")
            if msg.get("completed") and conn.rank not in s.completed:
                s.completed.append(conn.rank)
                self.persist(s)
            if s.terminal:
                conn.send(self._terminal_msg())
            elif s.phase == "Running" and conn.rank not in s.completed:
                self._restart(f"rank {conn.rank} restarted")
            self._check_done()
            return
        if self.conns.get(conn.rank) is not conn or int(msg.get("gen", -1)) != s.generation:
            return  # a stale connection or an earlier generation
        if op == "stopped":
            conn.running = False
        elif op == "exit":
            conn.running = False
            code = int(msg.get("code", 1))
            if code == 0:
                # A supervisor reports 0 only for a trainer that finished on its own (one it stopped is
                # never reported): a completion in any phase. Ignored while stopping, the rank would be
                # started again, ignore the start (it completed) and hang the run.
                if conn.rank not in s.completed:
                    s.completed.append(conn.rank)
                    self.persist(s)
                self._check_done()
                return
            if s.phase != "Running":
                return  # stopping: every exit now is the stop we asked for
            line = msg.get("line")
            self.suspect = _Exit(conn.rank, code, str(line) if line else None)
            self._restart(f"rank {conn.rank} exited {code}" + (f": {line}" if line else ""), suspect=True)

    def _lost(self, rank: int, why: str) -> None:
        s = self.state
        if rank in s.completed:
            return
        if s.phase == "Running":
            self._restart(why)
        elif self.suspect is not None:
            # The gang is stopping because a trainer exited, and before every rank reported back a
            # peer went away: that exit was the loss seen through a collective first, no failure.
            ex, self.suspect = self.suspect, None
            s.reason = f"{why}; rank {ex.rank}'s exit {ex.code} came with it, not counted as a failure"
            self.ready_at = time.monotonic()
            self.log(s.reason)
            self.persist(s)
            self.publish(s)

    def _restart(self, why: str, *, suspect: bool = False) -> None:
        """Stop every trainer of this generation; :meth:`tick` starts the next when all are back.

        A lost or restarted peer (preemption, a drain) restarts the gang as soon as everyone is
        back. A trainer's non-zero exit (``suspect``) holds the start until the gang has stopped
        and :meth:`_attribute` decided whether it was a failure (which backs off) or a loss.
        """
        s = self.state
        if s.phase != "Running":
            return
        s.restarts += 1
        s.reason = why
        self.ready_at = float("inf") if suspect else time.monotonic()
        later = "once the gang has stopped" if suspect else "at once"
        self.log(f"gang restart {s.restarts} ({why}); next start {later}")
        self._set_phase("Restarting")
        self._broadcast({"op": "stop", "gen": s.generation})

    def _attribute(self) -> None:
        """Every unfinished rank stopped and is still here: the suspect exit was a failure.

        It counts against ``maxRestarts`` (past it the run is Failed) and backs off
        ``backoff × 2^(failures-1)``, at most :data:`MAX_BACKOFF_S`.
        """
        ex, s = self.suspect, self.state
        assert ex is not None
        self.suspect = None
        s.failures += 1
        s.failed_rank, s.exit_code, s.last_line = ex.rank, ex.code, ex.line
        s.reason = f"rank {ex.rank} exited {ex.code}" + (f": {ex.line}" if ex.line else "")
        if s.failures > self.max_restarts:
            s.restarts -= 1  # the gang stopped for this exit, but it does not restart
            s.reason = f"{s.reason} (after {self.max_restarts} restarts)"
            self.log(s.reason)
            self._finish("Failed")
            return
        delay = min(self.backoff * 2 ** (s.failures - 1), MAX_BACKOFF_S)
        self.ready_at = time.monotonic() + delay
        self.log(f"{s.reason}: failure {s.failures} of at most {self.max_restarts}; next start in {delay:.0f}s")
        self.persist(s)
        self.publish(s)

    def _finish(self, phase: str) -> None:
        self._set_phase(phase)
        self._broadcast(self._terminal_msg())

    def _check_done(self) -> None:
        if not self.state.terminal and len(set(self.state.completed)) >= self.world:
            self.state.reason = None
            self._finish("Succeeded")

    def tick(self) -> None:
        """Start the next generation once every unfinished rank is connected and idle."""
        s = self.state
        if s.terminal or s.phase == "Running":
            return
        gang = [r for r in range(self.world) if r not in s.completed]
        here = all(r in self.conns and not self.conns[r].running and not self.conns[r].leaving for r in gang)
        if self.suspect is not None and here:
            self._attribute()
        if s.terminal or time.monotonic() < self.ready_at:
            return
        if not gang:
            self._check_done()
            return
        if not here:
            return  # a rank is missing, leaving, or still stopping its trainer
        agreed = intersect([self.conns[r].steps for r in gang])
        s.generation += 1
        s.step = agreed[0] if agreed else None
        s.phase = "Running"
        self.persist(s)  # before anyone acts on the new generation
        self.publish(s)
        self.log(f"generation {s.generation}: ranks {gang} start, resuming from step {s.step}")
        for r in gang:
            self.conns[r].running = True
        self._broadcast({"op": "start", "gen": s.generation, "ranks": gang, "agreed": agreed})


# -- the trainers' side: the board the checkpoint agreement polls ----------------------------------


class GangBoard:
    """The board of :class:`~berth.runtime.agree.PollingAgreement`, kept by rank 0's supervisor.

    A call that cannot reach the coordinator (a DNS answer or a connection lost on a loaded
    node) is retried for ``patience`` seconds: both calls are idempotent, and a trainer must not
    fail its restore over a hiccup. If rank 0 is really gone, the supervisor stops the trainer.
    """

    def __init__(self, addr: str, timeout: float = 10.0, patience: float = 60.0) -> None:
        host, _, port = addr.rpartition(":")
        self.host, self.port, self.timeout, self.patience = host.strip("[]"), int(port), timeout, patience

    def _call(self, msg: Message) -> Message:
        deadline, delay = time.monotonic() + self.patience, 0.1
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                    send(sock, msg)
                    for reply in lines(sock):
                        return reply
                raise OSError("the gang coordinator closed the connection")
            except OSError:
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def put(self, name: str, data: bytes) -> None:
        self._call({"op": "put", "key": name, "data": data.decode()})

    def get(self, name: str) -> bytes | None:
        data = self._call({"op": "get", "key": name}).get("data")
        return None if data is None else str(data).encode()


def agreement(environ: Mapping[str, str] | None = None, *, timeout: float = 600) -> PollingAgreement | None:
    """The checkpoint agreement of a trainer started by ``berth run`` (None outside one).

    ``CheckpointManager(agree=gang.agreement())``: the ranks of this generation agree through
    rank 0's supervisor; the session is the generation, so offers of an earlier start never mix in.
    """
    env = os.environ if environ is None else environ
    addr, gen = env.get("BERTH_GANG_ADDR"), env.get("BERTH_GENERATION")
    if not addr or not gen:
        return None
    rank = int(env.get("RANK") or env.get("POD_INDEX") or 0)
    world = int(env.get("WORLD_SIZE") or env.get("BERTH_REPLICAS") or 1)
    rank, world = _in_generation(rank, world, env)
    return PollingAgreement(GangBoard(addr, patience=timeout), rank, world, f"gen-{gen}", timeout=timeout, poll=0.1)


def _in_generation(rank: int, world: int, env: Mapping[str, str]) -> tuple[int, int]:
    """This process's place among the processes of this generation (``BERTH_GANG_RANKS``).

    A generation after some pods completed runs only the unfinished ones (a rank killed in its
    final save while its peers finished): they agree among themselves, or they would wait for
    offers of ranks that never run again. A process is ``RANK``; its pod, ``RANK // per pod``.
    """
    pods = [int(p) for p in (env.get("BERTH_GANG_RANKS") or "").split(",") if p.strip().isdigit()]
    replicas = int(env.get("BERTH_REPLICAS") or 0) or len(pods)
    per_pod = max(world // replicas, 1) if replicas else 1
    pod, local = divmod(rank, per_pod)
    if not pods or pod not in pods or len(pods) == replicas:
        return rank, world
    return pods.index(pod) * per_pod + local, len(pods) * per_pod


def agreed_steps(environ: Mapping[str, str] | None = None) -> list[int]:
    """The steps every rank of this generation has committed, newest first (``BERTH_AGREED_STEPS``)."""
    env = os.environ if environ is None else environ
    raw = env.get("BERTH_AGREED_STEPS") or ""
    return [int(s) for s in raw.split(",") if s.strip().isdigit()]


def offer(steps: Sequence[int], limit: int = 64) -> list[int]:
    """The newest ``limit`` steps of a rank (what a hello carries; old steps never win agreement)."""
    return sorted(set(steps), reverse=True)[:limit]
