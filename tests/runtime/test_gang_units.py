"""The gang coordinator's decisions, driven event by event (no threads, no timing)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from berth.runtime.gang import Coordinator, RunState, _Conn


class Member:
    def __init__(self, coord: Coordinator, rank: int, boot: str = "a") -> None:
        self.ours, theirs = socket.socketpair()
        self.ours.settimeout(1)
        self.conn = _Conn(theirs, rank, boot, time.monotonic())
        self.coord, self.rank, self.buf = coord, rank, b""

    def say(self, op: str, **fields: object) -> None:
        self.coord.handle("msg", self.conn, {"op": op, "rank": self.rank, **fields})

    def heard(self) -> list[dict[str, object]]:
        self.ours.setblocking(False)
        try:
            while chunk := self.ours.recv(65536):
                self.buf += chunk
        except BlockingIOError:
            pass
        lines, self.buf = self.buf.split(b"\n"), b""
        return [json.loads(line) for line in lines if line]


World = tuple[Coordinator, list[Member], list[dict[str, object]]]


@pytest.fixture
def world() -> Iterator[World]:
    persisted: list[dict[str, object]] = []
    coord = Coordinator(2, RunState(), max_restarts=1, backoff=60, persist=lambda s: persisted.append(s.to_json()))
    members = [Member(coord, r) for r in range(2)]
    for m in members:
        m.say("hello", boot="a", completed=False, steps=[10, 20] if m.rank == 0 else [10])
    coord.tick()
    yield coord, members, persisted
    for m in members:
        m.ours.close()


def test_start_waits_for_everyone_and_persists_the_generation_first(world: World) -> None:
    coord, members, persisted = world
    assert coord.state.phase == "Running" and coord.state.generation == 1
    assert persisted[-1]["generation"] == 1 and persisted[-1]["phase"] == "Running"
    start = members[1].heard()[-1]
    assert start == {"op": "start", "gen": 1, "ranks": [0, 1], "agreed": [10]}


def test_failure_backs_off_peer_loss_does_not(world: World) -> None:
    coord, members, _ = world
    members[0].say("exit", gen=1, code=2, line="oom")
    assert coord.state.phase == "Restarting" and coord.state.failures == 1
    assert coord.ready_at > time.monotonic() + 50  # backoff 60s
    for m in members:
        assert {"op": "stop", "gen": 1} in m.heard()
        m.say("exit", gen=1, code=143)  # the stop we asked for: not a failure
    assert coord.state.failures == 1
    for m in members:
        m.say("stopped", gen=1, steps=[10])
    coord.ready_at = 0
    coord.tick()
    assert coord.state.generation == 2 and coord.state.phase == "Running"
    coord.handle("lost", members[1].conn, {})
    assert coord.state.phase == "Restarting" and coord.state.restarts == 2 and coord.state.failures == 1
    assert coord.ready_at <= time.monotonic()


def test_stale_generation_is_ignored_and_failures_past_the_limit_fail(world: World) -> None:
    coord, members, _ = world
    members[1].say("exit", gen=0, code=1, line="old")
    assert coord.state.phase == "Running" and coord.state.failures == 0
    members[1].say("exit", gen=1, code=1, line="boom")
    for m in members:
        m.say("stopped", gen=1, steps=[])
    coord.ready_at = 0
    coord.tick()
    members[1].say("exit", gen=2, code=1, line="boom again")
    s = coord.state
    assert (s.phase, s.failed_rank, s.exit_code, s.last_line) == ("Failed", 1, 1, "boom again")
    assert {"op": "failed", "rank": 1, "code": 1, "line": "boom again"} in members[0].heard()
    late = Member(coord, 0, boot="b")
    late.say("hello", boot="b", completed=False, steps=[])
    assert late.heard()[-1]["op"] == "failed"  # a restarted rank learns the verdict, never starts


def test_completion_from_exit_or_hello_and_a_restarted_peer_restarts_the_gang(world: World) -> None:
    coord, members, _ = world
    members[0].say("exit", gen=1, code=0)
    assert coord.state.completed == [0] and coord.state.phase == "Running"
    again = Member(coord, 1, boot="b")  # rank 1's container restarted mid-run
    again.say("hello", boot="b", completed=False, steps=[10])
    assert coord.state.phase == "Restarting"
    again.say("stopped", gen=1, steps=[10])
    coord.tick()
    assert again.heard()[-1] == {"op": "start", "gen": 2, "ranks": [1], "agreed": [10]}
    again.say("exit", gen=2, code=0)
    assert coord.state.phase == "Succeeded"
