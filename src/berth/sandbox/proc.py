"""Start, watch and stop the sandbox's processes by PID.

Processes are spawned in their own session so they outlive ``berth sandbox up`` and ignore the
terminal's Ctrl-C. A PID alone could be reused by an unrelated process after a reboot or a crash,
so each record also keeps the kernel's start time of the process: ``stop`` only signals a PID whose
start time still matches.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    """One started component, as saved in the sandbox state file."""

    name: str
    pid: int
    start_ticks: int
    log: str
    argv: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            log=str(data["log"]),
            argv=[str(a) for a in data["argv"]],
        )


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may contain spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """Kernel start time of PID in clock ticks since boot, or None when there is no such process."""
    fields = _stat_fields(pid)
    # stat(5): field 22 is starttime; fields[0] here is field 3 (state).
    return int(fields[19]) if fields else None


def _reap(pid: int) -> None:
    """Collect the exit status when PID is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(record: ProcessRecord) -> bool:
    """True when the recorded process exists, is the same process (start time), and is not a zombie."""
    _reap(record.pid)
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def spawn(name: str, argv: Sequence[str], log: Path, home: Path) -> ProcessRecord:
    """Start ARGV in a new session with stdout/stderr appended to LOG.

    HOME is set to HOME (the sandbox state directory) so no component picks up the user's
    ~/.kube or ~/.kwok configuration.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            {**os.environ, "HOME": str(home)},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)
    ticks = start_ticks(pid)
    return ProcessRecord(name=name, pid=pid, start_ticks=ticks or 0, log=str(log), argv=list(argv))


def stop(records: Sequence[ProcessRecord], grace_s: float = 10.0) -> list[int]:
    """Stop RECORDS one after the other, in the order given; return the PIDs that were running.

    One at a time on purpose: the API server shuts down in about a second while etcd is up,
    but stalls for its full grace period when etcd is killed at the same moment. Each gets
    SIGTERM, then SIGKILL after GRACE_S.
    """
    stopped = []
    for record in records:
        if not is_running(record):
            continue
        stopped.append(record.pid)
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, sig)
            deadline = time.monotonic() + wait_s
            while is_running(record) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not is_running(record):
                break
    return stopped


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for clients' source ports (Linux's default when it cannot be read)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_ports(count: int, *, paired: int = 0) -> list[int]:
    """COUNT distinct free TCP ports on 127.0.0.1, outside the kernel's ephemeral range.

    A server's port must not be one the kernel may hand a client as its source port: while the server
    restarts, a client retrying ``connect`` to that port can be given the very same port and connect
    to itself (TCP simultaneous open), read back its own request, and hold the port so the server
    cannot bind it again. With PAIRED, port + PAIRED is free and outside the range too (SeaweedFS puts
    each gRPC port 10000 above its HTTP port). The sockets stay open together so the ports differ.
    """
    low, high = _ephemeral_range()
    candidates = [p for p in range(1024, 65536 - paired) if not (low <= p <= high or low <= p + paired <= high)]
    if len(candidates) < 4 * count:
        candidates = list(range(1024, 65536 - paired))  # the whole range is ephemeral: take what there is
    rng = random.Random()
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count * (2 if paired else 1):
            port = rng.choice(candidates)
            pair = [port, port + paired] if paired else [port]
            held = []
            try:
                for p in pair:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    held.append(s)
                    s.bind(("127.0.0.1", p))
            except OSError:
                for s in held:
                    s.close()
                continue
            sockets.extend(held)
        return [s.getsockname()[1] for s in sockets[:: 2 if paired else 1]]
    finally:
        for s in sockets:
            s.close()


def log_tail(path: Path, lines: int = 25) -> str:
    """The last LINES lines of a component log, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
