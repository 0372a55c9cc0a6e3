"""The supervisors' connection to the coordinator, on real sockets: hello first, reconnect soon.

Under load a supervisor's heartbeat used to overtake its hello, the coordinator dropped the
connection as not its protocol, and every rank's reconnect after rank 0's restart took seconds
of retries (measured in the chaos test's generations). Also: which ranks a generation's
checkpoint agreement waits for.
"""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path

import pytest

from berth.runtime.gang import Coordinator, RunState, _in_generation, lines, send
from tests.runtime.conftest import free_port
from tests.runtime.lifecycle_harness import LocalGang, spec


def test_a_heartbeat_before_the_hello_keeps_the_connection() -> None:
    coord = Coordinator(1, RunState(), max_restarts=0, backoff=0, persist=lambda s: None)
    port = free_port()
    coord.serve("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            send(sock, {"op": "hb"})
            send(sock, {"op": "hello", "rank": 0, "boot": "b", "completed": False, "steps": []})
            heard = next(m for m in lines(sock) if m["op"] != "hb")
        assert heard == {"op": "start", "gen": 1, "ranks": [0], "agreed": []}
    finally:
        coord.close()


def test_a_supervisor_says_hello_first_and_reconnects_soon(tmp_path: Path) -> None:
    """A stand-in coordinator reads each connection's first message, beats once and hangs up: every
    first message is a hello, and the supervisor is back within its short retry delay."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)
    gang = LocalGang(tmp_path, spec("demo", 2, {}), server.getsockname()[1], {})
    gang.start(1)
    firsts, times = [], []
    try:
        for _ in range(5):
            conn, _addr = server.accept()
            times.append(time.monotonic())
            with conn:
                conn.settimeout(10)
                firsts.append(next(lines(conn)))
                send(conn, {"op": "hb"})  # it heard the coordinator: the next retry comes at once
    finally:
        gang.stop()
        server.close()
    assert [m["op"] for m in firsts] == ["hello"] * 5, firsts
    assert firsts[0]["rank"] == 1 and firsts[0]["completed"] is False
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.05 s after a connection that heard the coordinator (it was 0.3 s, then 0.5 s per refused try)
    assert sum(gaps) < 1.0, gaps


@pytest.mark.parametrize(
    ("env", "rank", "world", "expected"),
    [
        ({"BERTH_GANG_RANKS": "0,1,2", "BERTH_REPLICAS": "3"}, 2, 3, (2, 3)),  # everyone: unchanged
        ({"BERTH_GANG_RANKS": "2", "BERTH_REPLICAS": "3"}, 2, 3, (0, 1)),  # alone after 0 and 1 completed
        ({"BERTH_GANG_RANKS": "1,3", "BERTH_REPLICAS": "4"}, 3, 4, (1, 2)),
        ({"BERTH_GANG_RANKS": "1,3", "BERTH_REPLICAS": "4"}, 7, 8, (3, 4)),  # 2 processes per pod: pod 3, local 1
        ({"BERTH_REPLICAS": "3"}, 1, 3, (1, 3)),  # no list (an older supervisor): unchanged
    ],
)
def test_a_generation_agrees_among_its_own_ranks(
    env: dict[str, str], rank: int, world: int, expected: tuple[int, int]
) -> None:
    assert _in_generation(rank, world, env) == expected


def test_the_trainer_gets_the_ranks_of_its_generation(tmp_path: Path) -> None:
    """BERTH_GANG_RANKS reaches the trainer's env from the coordinator's start message."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)
    gang = LocalGang(tmp_path, spec("demo", 3, {}), server.getsockname()[1], {})
    out = tmp_path / "env.txt"
    gang.container = {**gang.container, "command": [*gang.container["command"][:-2], "sh", "-c", f"env > {out}"]}
    gang.start(2)
    try:
        conn, _addr = server.accept()
        with conn:
            conn.settimeout(10)
            assert next(lines(conn))["op"] == "hello"
            send(conn, {"op": "start", "gen": 4, "ranks": [2], "agreed": [19]})
            exited = next(m for m in lines(conn) if m["op"] == "exit")
        assert exited["code"] == 0 and exited["gen"] == 4
    finally:
        gang.stop()
        server.close()
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert (env["BERTH_GANG_RANKS"], env["BERTH_GENERATION"], env["BERTH_RESUME_STEP"]) == ("2", "4", "19")
