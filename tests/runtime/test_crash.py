"""SIGKILL of a saving process at hundreds of random moments never costs a committed step.

Each cycle starts a fresh process that restores (and checks the state bit-exact against
what that step must contain), then saves step after step — writes, fsyncs, renames and
retention deletes run continuously — until the test kills it from outside at a random
moment. The next process must restore at least the last step the killed one reported
committed, and at most the one it was writing.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from berth.checkpoint import CheckpointManager

from .ckpt_child import make_state, same
from .conftest import child

KILLS = int(os.environ.get("BERTH_TEST_KILLS", "200"))


def _restored(line: str) -> int | None:
    assert line.startswith("restored "), line
    word = line.split()[1]
    return None if word == "none" else int(word)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_never_loses_a_committed_step(tmp_path: Path) -> None:
    _kill_loop(tmp_path / "ckpt", KILLS, "copy", 0.15)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_at_random_moments_with_fork_snapshots(tmp_path: Path) -> None:
    """The same with ``snapshot="fork"``: the kills also land while a snapshot child writes; it
    dies with its trainer (the next process's lock would be refused while it lived). A fork per
    save costs milliseconds more than a thread's write, so the kills are spread over 0.4 s."""
    _kill_loop(tmp_path / "ckpt", max(KILLS // 8, 10), "fork", 0.4)


def _kill_loop(directory: Path, kills: int, snapshot: str, spread: float) -> None:
    rng = random.Random(int(os.environ.get("BERTH_TEST_SEED", "4")))
    last_committed: int | None = None
    ceiling: int | None = None  # the step the previous process was writing when killed
    cycles_with_commits = commits = 0
    for cycle in range(kills):
        proc = child("loop", str(directory), env={"BERTH_CHECKPOINT_SNAPSHOT": snapshot})
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            proc.wait()
            pytest.fail(f"cycle {cycle}: child died before restoring: {proc.stderr.read() if proc.stderr else ''}")
        restored = _restored(line)
        if last_committed is not None:
            assert restored is not None and restored >= last_committed, (cycle, restored, last_committed)
        if ceiling is not None:
            assert restored is None or restored <= ceiling, (cycle, restored, ceiling)  # never a partial step
        time.sleep(rng.uniform(0.0, spread))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"child exited on its own: {err[-2000:]}"
        committed = [int(w.split()[1]) for w in out.splitlines() if w.startswith("committed ")]
        assert "MISMATCH" not in out and "Traceback" not in err, err[-2000:]
        if committed:
            cycles_with_commits += 1
            commits += len(committed)
            last_committed = committed[-1]
        # It was writing at most the step after its last reported commit (or after what it restored).
        ceiling = (committed[-1] if committed else restored or 0) + 1
    # The kills landed among real work: most cycles got steps committed before dying mid-save.
    assert commits >= kills and cycles_with_commits >= kills * 0.4, (commits, cycles_with_commits)

    # Finally a fresh manager in this process: newest committed step, bit-exact, nothing temporary left.
    with CheckpointManager(directory, keep_last=2) as mgr:
        step, state = mgr.restore()
        assert step is not None and last_committed is not None and step >= last_committed
        assert same(state, make_state(step))
        assert not [p for p in directory.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
