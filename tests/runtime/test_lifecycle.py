"""The lifecycle issue's cases on local processes that get exactly the rendered pod's command and env.

See lifecycle_harness.py for what stands in for a pod. Faults are injected by the trainer
(TEST_FAIL) and by killing processes; the journal the trainers append to is what the invariants
are checked against: never two trainers of one rank at once (a kernel lock the trainer takes),
never a resume from a step some rank does not have, never a Succeeded run that did not finish.
"""

from __future__ import annotations

import json
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


def test_a_rank_that_fails_after_its_peers_completed_finishes_alone(make_gang: Any) -> None:
    """Ranks 0 and 1 finish step 20; rank 2 fails before its save of step 20. The next generation
    runs rank 2 alone (completed ranks never run again), and its checkpoint agreement is among the
    ranks of that generation: agreeing with all three, it waited for offers that never came."""
    gang = make_gang(TEST_STEPS="20", TEST_STEP_S="0.02", TEST_FAIL="2:20:late")
    gang.start_all()
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 60)
    _finished(gang, 20)
    run = gang.state(0)["gang"]
    assert (run["failures"], run["generation"], run["failedRank"]) == (1, 2, 2), run
    second = [e for e in _invariants(gang) if e["ev"] == "start" and e["gen"] == 2]
    assert [(e["rank"], e["resume"]) for e in second] == [(2, 19)], second


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
    assert gang.state(1)["lastStopSeconds"] == took  # the new pod's supervisor kept it (doctor reads it)
    events = _invariants(gang)
    later = [e for e in events if e["ev"] == "start" and e["gen"] >= 2]
    assert later and all(e["resume"] is not None and e["resume"] >= step - 1 for e in later), later


def test_a_peer_lost_before_the_coordinator_knows_is_a_stop_with_the_gang_not_a_failure(make_gang: Any) -> None:
    """The deleted-pod race, provoked: rank 2's trainer vanishes while its supervisor is frozen
    (SIGSTOP: its connection stays open, the coordinator cannot know yet), so rank 0 or 1 times out
    in its collective and exits 1 first (the first exit stops the gang, so the other may be stopped
    before its own timeout). Only then does rank 2's container die. With maxRestarts 0 a counted
    failure would fail the run; it must restart and succeed instead."""
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

    gang.wait_for(lambda: bool(timeouts() & {0, 1}) and gang.run_phase() == "Restarting", 30, kubelet=False)
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


# Where a kill lands, as observed just before it: while the gang stops its trainers (a gang stop
# an earlier kill started, or rank 0 gone and its peers stopping), while no trainer runs (the
# supervisors reconnect, rank 0 restarts, the coordinator waits for every rank), while new trainers
# import, rendezvous and agree on their step, mid-training (a step or a save), and after some or
# all ranks completed.
MOMENTS = ("stopping", "restarting", "restoring", "training")
LATE_MOMENTS = ("completing", "succeeded")
TARGETS = ("coordinator", "supervisor", "trainer")  # rank 0's container, another rank's, a trainer
# What a kill's random delay counts from: the previous kill (the gang is stopping or restarting
# then), new trainers spawned (importing, agreeing on a step, restoring), every trainer of the
# generation started (a step or a save); how often (weight) and the longest delay (s). After a kill
# that hit running trainers, half the next kills follow within STOP_DELAY, inside the stop it began.
ANCHORS = {"kill": (50, 0.3), "spawned": (20, 0.6), "training": (30, 0.4)}
STOP_DELAY = 0.2


def _moment(gang: LocalGang, trainers: dict[int, list[int]]) -> str:
    run = gang.state(0).get("gang", {})
    if run.get("phase") == "Succeeded":
        return "succeeded"
    done = set(run.get("completed") or [])
    if not any(trainers.values()):
        return "restarting"
    if run.get("phase") != "Running" or gang.procs[0].poll() is not None:
        return "stopping"
    if done:
        return "completing"
    if not all(trainers.values()):
        return "stopping"  # a trainer is gone: the gang stop is on its way
    return "training" if _all_started(gang, run) else "restoring"


def _all_started(gang: LocalGang, run: dict[str, Any]) -> bool:
    """Every unfinished rank's trainer of the current generation has restored and trains."""
    done = set(run.get("completed") or [])
    started = {e["rank"] for e in gang.events() if e["ev"] == "start" and e["gen"] == run.get("generation")}
    return set(range(gang.replicas)) - done <= started


def _anchored(gang: LocalGang, anchor: str) -> Any:
    def reached() -> bool:
        run = gang.state(0).get("gang", {})
        if run.get("phase") != "Running":
            return run.get("phase") == "Succeeded"
        if anchor == "spawned":
            return any(gang.trainers().values())
        return _all_started(gang, run)

    return reached


def _kill_one(gang: LocalGang, rng: random.Random) -> tuple[str, str]:
    """SIGKILL a random process of the gang — a container (its supervisor; rank 0's is the
    coordinator) or a trainer — and say which and at what moment it landed."""
    trainers = gang.trainers()
    moment = _moment(gang, trainers)
    kind, rank = rng.choice(
        [("container", r) for r in range(gang.replicas)] + [("trainer", r) for r in trainers if trainers[r]]
    )
    if kind == "trainer":
        os.kill(trainers[rank][0], signal.SIGKILL)
        return "trainer", moment
    gang.kill_container(rank)
    gang.kubelet()
    return ("coordinator" if rank == 0 else "supervisor"), moment


def _allow_finish(gang: LocalGang, steps_file: Path) -> int:
    """Let the run finish a few steps past what any rank has: every rank ends on the same step."""
    volumes = [Path(gang.env_for(r)["BERTH_CHECKPOINT_DIR"]) for r in range(gang.replicas)]
    final = max(max(scan_steps(v), default=0) for v in volumes) + 3
    tmp = steps_file.with_suffix(".tmp")
    tmp.write_text(str(final))
    tmp.replace(steps_file)
    return final


@pytest.mark.slow
def test_random_sigkills_keep_the_invariants(make_gang: Any) -> None:
    """100 SIGKILLs (BERTH_CHAOS_KILLS for a soak) of a random process of the gang — a container
    (its supervisor; rank 0's is the coordinator) or a trainer — at random moments (ANCHORS), from
    a printed seed (BERTH_CHAOS_SEED replays one). The run may finish only after a random kill
    late in the chaos (the steps file), so the last kills land while ranks complete and after.
    Checked: never two trainers of one rank at once, never a resume from a step some rank lacks,
    never a Succeeded run that did not finish (nor a trainer run after it), and the kills landed
    at every moment of MOMENTS, on every kind of target, across many generations."""
    kills = int(os.environ.get("BERTH_CHAOS_KILLS") or 100)
    seed = int(os.environ.get("BERTH_CHAOS_SEED") or random.randrange(1 << 32))
    print(f"chaos seed {seed} (BERTH_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    gang = make_gang(
        lifecycle={"maxRestarts": 100_000, "stopGraceSeconds": 1}, TEST_STEPS="1000000", TEST_STEP_S="0.02"
    )
    steps_file = gang.root / "steps"
    gang.test_env["TEST_STEPS_FILE"] = str(steps_file)
    finish_after = rng.randrange(kills * 75 // 100, kills * 90 // 100)
    final_steps: int | None = None
    succeeded_at: float | None = None
    landed = {(t, m): 0 for t in TARGETS for m in MOMENTS + LATE_MOMENTS}
    moment = "restarting"
    began = time.monotonic()
    gang.start_all()
    for i in range(kills):
        if moment in ("restoring", "training") and rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, STOP_DELAY))
        else:
            anchor = rng.choices(list(ANCHORS), weights=[w for w, _ in ANCHORS.values()])[0]
            if anchor != "kill":
                gang.wait_for(_anchored(gang, anchor), 60)
            time.sleep(rng.uniform(0.0, ANCHORS[anchor][1]))
        target, moment = _kill_one(gang, rng)
        landed[target, moment] += 1
        if i == finish_after:
            final_steps = _allow_finish(gang, steps_file)
        if succeeded_at is None and gang.run_phase() == "Succeeded":
            succeeded_at = time.time()
            assert final_steps is not None, f"seed {seed}: Succeeded before the run was allowed to finish"
            _finished(gang, final_steps)
    chaos_s = time.monotonic() - began
    gang.wait_for(lambda: gang.run_phase() == "Succeeded", 120)
    assert final_steps is not None
    _finished(gang, final_steps)
    events = _invariants(gang)
    if succeeded_at is not None:
        assert not [e for e in events if e["ev"] == "start" and e["t"] > succeeded_at], "a trainer ran after Succeeded"
    run = gang.state(0)["gang"]
    per_moment = {m: sum(landed[t, m] for t in TARGETS) for m in MOMENTS + LATE_MOMENTS}
    per_target = {t: sum(landed[t, m] for m in MOMENTS + LATE_MOMENTS) for t in TARGETS}
    print(
        f"seed {seed}: {kills} kills in {chaos_s:.1f} s ({time.monotonic() - began:.1f} s to Succeeded), "
        f"{run['generation']} generations, {final_steps} steps; per moment {per_moment}; per target {per_target}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    assert run["generation"] >= kills // 5, f"seed {seed}: {run['generation']} generations for {kills} kills"
    assert any(e["resume"] for e in events if e["ev"] == "start"), "no generation resumed: the kills missed the run"
    assert all(per_moment[m] >= kills // 20 for m in MOMENTS), f"seed {seed}: kills did not land everywhere: {landed}"
    assert all(per_target[t] >= kills // 10 for t in TARGETS), f"seed {seed}: {per_target}"


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


def test_the_coordinator_and_the_main_loop_never_save_over_each_other(tmp_path: Path) -> None:
    """Rank 0's coordinator thread and its main loop both save run.json. A CI run caught the race:
    the main loop's snapshot, taken before the coordinator's Restarting, was renamed over it, and
    the file said Running while the gang was stopping (and a restarted rank 0 would have resumed
    from it). After each save returns, the file holds that save's change, whatever the other
    thread does; without the lock 45-62 of 600 saves were lost here."""
    import threading

    from berth.runtime.supervisor import Config, Supervisor

    env = {"BERTH_REPLICAS": "1", "BERTH_STATE_DIR": str(tmp_path)}
    sup = Supervisor(Config.from_env(env, 0, "127.0.0.1"), ["true"], env, None)
    path = tmp_path / ".berth" / "run.json"
    stale: list[tuple[str, int, int]] = []

    def writer(key: str) -> None:
        for i in range(1, 301):
            if key == "gang":
                sup.save(gang={"generation": i})
                seen = json.loads(path.read_text())["gang"]["generation"]
            else:
                sup.save(starts=i)
                seen = json.loads(path.read_text())["starts"]
            if seen < i:
                stale.append((key, i, seen))

    threads = [threading.Thread(target=writer, args=(key,)) for key in ("gang", "starts")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not stale, f"{len(stale)} saves were overwritten by an older snapshot, e.g. {stale[:3]}"
    assert json.loads(path.read_text()) == sup.state
