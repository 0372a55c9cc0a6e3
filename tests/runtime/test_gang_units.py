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
    assert coord.state.phase == "Restarting" and coord.state.failures == 0  # not decided yet
    for m in members:
        assert {"op": "stop", "gen": 1} in m.heard()
        m.say("exit", gen=1, code=143)  # the stop we asked for: not a failure
    for m in members:
        m.say("stopped", gen=1, steps=[10])
    coord.tick()  # every rank stopped and none was lost: the exit was a failure
    assert coord.state.failures == 1 and coord.state.generation == 1
    assert (coord.state.failed_rank, coord.state.exit_code, coord.state.last_line) == (0, 2, "oom")
    assert coord.ready_at > time.monotonic() + 50  # backoff 60s
    coord.handle("lost", members[1].conn, {})  # a loss after the verdict changes nothing
    assert coord.state.failures == 1
    members[1] = Member(coord, 1, boot="b")
    members[1].say("hello", boot="b", completed=False, steps=[10])
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
    coord.tick()
    assert coord.state.failures == 1 and coord.state.phase == "Restarting"
    coord.ready_at = 0
    coord.tick()
    members[1].say("exit", gen=2, code=1, line="boom again")
    assert coord.state.phase == "Restarting"  # the verdict waits until the gang has stopped
    members[0].say("stopped", gen=2, steps=[])
    coord.tick()
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


@pytest.mark.parametrize("how", ["lost", "leaving", "restarted"])
def test_an_exit_before_the_peer_loss_reaches_the_coordinator_is_no_failure(world: World, how: str) -> None:
    """The race of a deleted pod: rank 0's trainer sees rank 1 vanish (a broken collective) and
    exits 1 before the coordinator hears that rank 1 went away; the exit stops with the gang."""
    coord, members, _ = world
    coord.max_restarts = 0  # were it counted, the run would be Failed
    members[0].say("exit", gen=1, code=1, line="RuntimeError: Connection reset by peer")
    assert coord.state.phase == "Restarting" and coord.ready_at == float("inf")
    members[0].say("stopped", gen=1, steps=[10])
    coord.tick()  # rank 1 has not reported back: nothing is decided, nothing starts
    assert (coord.state.failures, coord.state.generation) == (0, 1)
    if how == "lost":
        coord.handle("lost", members[1].conn, {})
        members[1] = Member(coord, 1, boot="b")
        members[1].say("hello", boot="b", completed=False, steps=[10])
    elif how == "leaving":
        members[1].say("leaving", gen=1)
        coord.tick()
        assert coord.state.generation == 1  # never a generation with a rank that is going away
        coord.handle("lost", members[1].conn, {})
        members[1] = Member(coord, 1, boot="b")
        members[1].say("hello", boot="b", completed=False, steps=[10])
    else:
        members[1] = Member(coord, 1, boot="b")  # its container restarted: a new boot id
        members[1].say("hello", boot="b", completed=False, steps=[10])
    s = coord.state
    assert (s.phase, s.failures, s.failed_rank, s.restarts) == ("Restarting", 0, None, 1)
    assert "rank 1" in str(s.reason) and "not counted as a failure" in str(s.reason)
    coord.tick()  # no back-off: a loss restarts the gang as soon as everyone is back
    assert (s.phase, s.generation, s.failures) == ("Running", 2, 0)
    assert members[1].heard()[-1] == {"op": "start", "gen": 2, "ranks": [0, 1], "agreed": [10]}


def test_leaving_while_running_stops_the_gang_before_its_trainer_is_signalled(world: World) -> None:
    coord, members, _ = world
    members[1].say("leaving", gen=1)
    assert coord.state.phase == "Restarting" and coord.state.failures == 0
    assert {"op": "stop", "gen": 1} in members[0].heard()
    members[0].say("exit", gen=1, code=1)  # its peer is gone: ignored, the gang is stopping
    members[0].say("stopped", gen=1, steps=[10])
    coord.tick()
    assert (coord.state.generation, coord.state.failures) == (1, 0)  # waits for rank 1 to come back


def test_a_completion_while_the_gang_stops_is_recorded(world: World) -> None:
    """A trainer that finished its last step just as another rank failed: its exit 0 arrives while
    the gang stops. Dropped, the next generation would start that rank again, which (complete)
    never runs a trainer, and the run would hang in Running."""
    coord, members, _ = world
    members[1].say("exit", gen=1, code=1, line="boom")
    members[0].say("exit", gen=1, code=0)
    assert coord.state.completed == [0] and coord.state.phase == "Restarting"
    members[1].say("stopped", gen=1, steps=[10])
    coord.tick()
    coord.ready_at = 0
    coord.tick()
    assert members[1].heard()[-1] == {"op": "start", "gen": 2, "ranks": [1], "agreed": [10]}
    members[1].say("exit", gen=2, code=0)
    assert coord.state.phase == "Succeeded"
