"""The lifecycle issue's cases on local processes that get exactly the rendered pod's command and env.

See lifecycle_harness.py for what stands in for a pod. Faults are injected by the trainer
(TEST_FAIL) and by killing processes; the journal the trainers append to is what the invariants
are checked against: never two trainers of one rank at once (a kernel lock the trainer takes),
never a resume from a step some rank does not have, never a Succeeded run that did not finish.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.runtime.store import scan_steps
from tests.runtime.conftest import free_port
from tests.runtime.lifecycle_harness import LocalGang, spec

FAST = {"backoffSeconds": 0, "stopGraceSeconds": 2}


@pytest.fixture
def make_gang(tmp_path: Path) -> Iterator[Any]:
    gangs: list[LocalGang] = []

    def make(replicas: int = 3, lifecycle: dict[str, Any] | None = None, **test_env: str) -> LocalGang:
        cluster = spec("demo", replicas, {**FAST, **(lifecycle or {})})
        gang = LocalGang(tmp_path / f"gang-{len(gangs)}", cluster, free_port(), test_env)
        gangs.append(gang)
        return gang

    yield make
    for gang in gangs:
        gang.stop()


def _invariants(gang: LocalGang) -> list[dict[str, Any]]:
    events = gang.events()
    bad = [e for e in events if e["ev"] in ("overlap", "resume-missing")]
    assert not bad, bad
    return events


def _finished(gang: LocalGang, steps: int) -> None:
    """Succeeded means every rank finished: its trainer said done and its volume has the last step."""
    events = gang.events()
    for rank in range(gang.replicas):
        assert any(e["ev"] == "done" and e["rank"] == rank for e in events), f"rank {rank} never finished"
        assert gang.state(rank)["completed"] is True
        found = scan_steps(Path(gang.env_for(rank)["BERTH_CHECKPOINT_DIR"]))
        assert rank in found.get(steps, {}) or found.get(steps), f"rank {rank} has no step {steps}"


def test_three_ranks_complete_and_never_rerun(make_gang: Any) -> None:
    gang = make_gang(TEST_STEPS="20", TEST_STEP_S="0.02")
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 60)
    _finished(gang, 20)
    starts = [e for e in _invariants(gang) if e["ev"] == "start"]
    assert len(starts) == 3
    # A container restart after completion: the supervisor idles, the trainer never runs again.
    gang.kill_container(1)
    gang.start(1)
    time.sleep(2)
    assert [e for e in gang.events() if e["ev"] == "start"] == starts
    assert gang.procs[1].poll() is None and not gang.trainer_pids(1)
    assert all(p.poll() is None for p in gang.procs.values()), "a supervisor exited after completion"
    assert "berth run [rank 0]: every rank completed" in (gang.root / "pod-0.log").read_text()


def test_one_failure_restarts_the_gang_from_the_agreed_step(make_gang: Any) -> None:
    gang = make_gang(TEST_STEPS="20", TEST_STEP_S="0.05", TEST_FAIL="1:7:once")
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 90)
    _finished(gang, 20)
    events = _invariants(gang)
    run = gang.state(0)["gang"]
    assert run["restarts"] == 1 and run["failures"] == 1 and run["generation"] == 2
    second = [e for e in events if e["ev"] == "start" and e["gen"] == 2]
    assert sorted(e["rank"] for e in second) == [0, 1, 2]
    resumed = {e["resume"] for e in second}
    assert len(resumed) == 1 and resumed.pop() > 0, second  # all together, from a step they all had
    assert {e["resumeEnv"] for e in second} == {str(second[0]["resume"])}
    assert all(gang.state(r)["starts"] == 2 for r in range(3))


def test_always_failing_rank_fails_the_run_after_max_restarts(make_gang: Any) -> None:
    gang = make_gang(lifecycle={"maxRestarts": 2}, TEST_STEPS="20", TEST_STEP_S="0.02", TEST_FAIL="1:3:always")
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Failed", 90)
    run = gang.state(0)["gang"]
    assert run["failures"] == 3 and run["restarts"] == 2
    assert (run["failedRank"], run["exitCode"], run["lastLine"]) == (1, 1, "boom at step 3")
    assert "rank 1 exited 1: boom at step 3" in run["reason"]
    assert gang.state(1)["exitCode"] == 1 and gang.state(1)["lastLine"] == "boom at step 3"
    time.sleep(1)
    assert not any(gang.trainer_pids(r) for r in range(3)), "a trainer runs after the run Failed"
    _invariants(gang)


def test_sigterm_commits_the_final_save_then_the_gang_resumes(make_gang: Any) -> None:
    gang = make_gang(TEST_STEPS="40", TEST_STEP_S="0.05")
    gang.start_all()
    gang.wait_for(lambda: any(e["ev"] == "start" for e in gang.events()) and bool(gang.trainer_pids(1)), 30)
    time.sleep(0.8)
    os.kill(gang.procs[1].pid, signal.SIGTERM)  # the kubelet's stop of a deleted pod
    assert gang.procs[1].wait(timeout=30) == 143
    final = [e for e in gang.events() if e["ev"] == "final" and e["rank"] == 1]
    assert final, gang.logs()
    step = final[0]["step"]
    assert 1 in scan_steps(Path(gang.env_for(1)["BERTH_CHECKPOINT_DIR"])).get(step, {}), "final save not committed"
    took = gang.state(1)["lastStopSeconds"]  # measured: how much of the 30 s grace the final save used
    assert (
        0 < took < 15
        and f"the trainer stopped {took:.1f}s after SIGTERM (grace period 30s)" in (gang.root / "pod-1.log").read_text()
    )
    gang.kubelet()  # the StatefulSet recreates the pod
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 90)
    _finished(gang, 40)
    events = _invariants(gang)
    later = [e for e in events if e["ev"] == "start" and e["gen"] >= 2]
    assert later and all(e["resume"] is not None and e["resume"] >= step - 1 for e in later), later


def test_a_peer_lost_before_the_coordinator_knows_is_a_stop_with_the_gang_not_a_failure(make_gang: Any) -> None:
    """The deleted-pod race, provoked: rank 2's trainer vanishes while its supervisor is frozen
    (SIGSTOP: its connection stays open, the coordinator cannot know yet), so ranks 0 and 1 time
    out in their collective and exit 1 first. Only then does rank 2's container die. With
    maxRestarts 0 a counted failure would fail the run; it must restart and succeed instead."""
    gang = make_gang(
        lifecycle={"maxRestarts": 0},
        TEST_STEPS="30",
        TEST_STEP_S="0.05",
        TEST_COLLECTIVE_TIMEOUT="1",
        BERTH_HEARTBEAT_TIMEOUT="120",  # the loss must come from the container's death, not silence
    )
    gang.start_all()
    gang.wait_for(lambda: all(scan_steps(Path(gang.env_for(r)["BERTH_CHECKPOINT_DIR"])).get(3) for r in range(3)), 60)
    os.kill(gang.procs[2].pid, signal.SIGSTOP)
    for pid in gang.trainer_pids(2):
        os.kill(pid, signal.SIGKILL)

    def timeouts() -> set[int]:
        return {e["rank"] for e in gang.events() if e["ev"] == "collective-timeout"}

    gang.wait_for(lambda: timeouts() == {0, 1} and gang.run_phase() == "Restarting", 30, kubelet=False)
    gang.wait_for(lambda: not gang.trainer_pids(0) and not gang.trainer_pids(1), 10, kubelet=False)
    time.sleep(1)  # the gang has stopped, but rank 2 never reported back: nothing decided, nothing started
    run = gang.state(0)["gang"]
    assert (run["phase"], run["generation"], run["failures"]) == ("Restarting", 1, 0), run
    gang.kill_container(2)  # now the coordinator sees rank 2 go
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 90)
    _finished(gang, 30)
    run = gang.state(0)["gang"]
    assert (run["failures"], run["restarts"], run["generation"]) == (0, 1, 2), run
    said = (gang.root / "pod-0.log").read_text()
    assert re.search(r"rank 2 went away; rank [01]'s exit 1 came with it, not counted as a failure", said), said
    later = [e for e in _invariants(gang) if e["ev"] == "start" and e["gen"] == 2]
    assert sorted(e["rank"] for e in later) == [0, 1, 2] and len({e["resume"] for e in later}) == 1, later


# Where a kill lands: while the gang stops and reconnects after the previous kill, while a new
# trainer imports and agrees on its step, mid-training (a step or a save), and during a gang stop
# another kill started (a second death while supervisors reap and report).
MOMENTS = ("restarting", "restoring", "training", "stopping")
TARGETS = ("coordinator", "supervisor", "trainer")  # rank 0's container, another rank's, a trainer


@pytest.mark.slow
def test_random_sigkills_keep_the_invariants(make_gang: Any) -> None:
    """SIGKILLs of a container (its supervisor; rank 0's is the coordinator) or a trainer: every
    target at every moment of MOMENTS, in a seeded random order with random delays
    (BERTH_CHAOS_SEED), 15 kills in CI (BERTH_CHAOS_ROUNDS=7 for a soak of about 100): never two
    trainers of one rank at once, never a resume from a step some rank lacks, never a Succeeded
    run that did not finish. Each kill of a running gang costs a generation (~3-5 s on a loaded
    2-core machine), so kills are placed where they test something rather than many at random."""
    gang = make_gang(lifecycle={"maxRestarts": 1000, "stopGraceSeconds": 1}, TEST_STEPS="100", TEST_STEP_S="0.02")
    rng = random.Random(int(os.environ.get("BERTH_CHAOS_SEED", "10")))
    plan = [(t, m) for t in TARGETS for m in MOMENTS] * int(os.environ.get("BERTH_CHAOS_ROUNDS", "1"))
    rng.shuffle(plan)

    def starts() -> int:
        return len([e for e in gang.events() if e["ev"] == "start"])

    def training() -> bool:
        return any(gang.trainer_pids(r) for r in range(3)) or gang.run_phase() == "Succeeded"

    landed: dict[str, int] = dict.fromkeys(MOMENTS, 0)
    began = time.monotonic()
    gang.start_all()

    def kill(target: str) -> None:
        if target == "trainer":
            gang.wait_for(training, 20)
            for pid in gang.trainer_pids(rng.choice([r for r in range(3) if gang.trainer_pids(r)] or [0]))[:1]:
                os.kill(pid, signal.SIGKILL)
        else:
            gang.kill_container(0 if target == "coordinator" else rng.randrange(1, 3))

    for target, moment in plan:
        before = starts()
        if moment == "restarting":
            time.sleep(rng.uniform(0.0, 0.2))
            landed[moment] += gang.run_phase() != "Running"
        elif moment == "restoring":  # a trainer process exists, but has not said "start" yet
            gang.wait_for(training, 20)
            landed[moment] += starts() == before
        elif moment in ("training", "stopping"):
            gang.wait_for(lambda: starts() > before or gang.run_phase() == "Succeeded", 20)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.4))
            landed[moment] += any(gang.trainer_pids(r) for r in range(3))
            if moment == "stopping":
                kill("trainer")  # starts a gang stop; the planned kill lands in it
                time.sleep(rng.uniform(0.0, 0.15))
        kill(target)
        gang.kubelet()
        if gang.run_phase() == "Succeeded":
            _finished(gang, 100)  # may finish between kills: it must really have finished
    chaos_s = time.monotonic() - began
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 120)
    _finished(gang, 100)
    events = _invariants(gang)
    gens = {e["gen"] for e in events if e["ev"] == "start"}
    assert len(gens) > len(plan) // 2, f"only {len(gens)} generations for {len(plan)} kills"
    assert any(e["resume"] for e in events if e["ev"] == "start"), "no generation resumed: the kills missed the run"
    assert all(landed[m] for m in ("training", "stopping")), landed
    print(f"{len(plan)} planned kills in {chaos_s:.1f} s, {len(gens)} generations, landed {landed}")


def test_a_final_save_that_used_most_of_the_grace_period_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from berth.runtime.supervisor import Config, Supervisor

    env = {"BERTH_REPLICAS": "1", "BERTH_STATE_DIR": str(tmp_path), "BERTH_TERMINATION_GRACE": "30"}
    sup = Supervisor(Config.from_env(env, 0, "127.0.0.1"), ["true"], env, None)
    sup._measured_stop(20.04)
    assert sup.state["lastStopSeconds"] == 20.0
    assert '"lastStopSeconds": 20.0' in (tmp_path / ".berth" / "run.json").read_text()
    said = capsys.readouterr().err
    assert "the trainer took 20s of the 30s grace period to stop: raise terminationGracePeriodSeconds" in said
    sup._measured_stop(3.0)
    assert "the trainer stopped 3.0s after SIGTERM (grace period 30s)" in capsys.readouterr().err
