"""SIGKILL of a saving process at hundreds of well-spread moments never costs a committed step.

Each cycle starts a fresh process that restores (and checks the state bit-exact against
what that step must contain), then saves step after step — writes, fsyncs, renames and
retention deletes run continuously — until the test kills it from outside. The next process
must restore at least the last step the killed one reported committed, and at most the one it
was writing.

Where the kills land: most cycles wait for the process's first commit (so it is in the save
loop and the length of one save is known), then kill it at a moment spread evenly over the
next save (stratified: cycle k lands in the k-th of ``_STRATA`` slices of it, at a random
point inside the slice), so writes, fsyncs, the commit rename and the retention deletes all get
hit. Every eighth cycle kills during start-up instead (lock, clean-up of the previous crash's
leftovers, restore, first save). The moments come from a seed printed at the start
(``BERTH_TEST_SEED`` replays a run). Processes are forked from a zygote that imported
everything once, so a cycle costs a restore and a few saves, not an interpreter start.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from berth.checkpoint import CheckpointManager

from .ckpt_child import make_state, same
from .conftest import CHILD

KILLS = int(os.environ.get("BERTH_TEST_KILLS", "200"))
_STRATA = 10
_STARTUP_EVERY = 8


def _line(stream: IO[str], where: str) -> list[str]:
    """The next line of the zygote or of its child, split in words; fails the test if it is gone."""
    line = stream.readline()
    if not line:
        pytest.fail(f"{where}: the zygote's output ended")
    return line.split()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_never_loses_a_committed_step(tmp_path: Path) -> None:
    seed = int(os.environ.get("BERTH_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"kill moments from BERTH_TEST_SEED={seed}")
    rng = random.Random(seed)
    directory = tmp_path / "ckpt"
    errors = tmp_path / "children.err"
    with errors.open("w") as err:
        zygote = subprocess.Popen(
            [sys.executable, str(CHILD), "zygote", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},  # the zygote must stay single-threaded
        )
    assert zygote.stdin is not None and zygote.stdout is not None
    last_committed: int | None = None
    ceiling: int | None = None  # the step the previous process was writing when killed
    commits = saving_kills = 0
    live = 0  # a forked child not yet killed: killed on the way out if the test fails
    try:
        for cycle in range(KILLS):
            where = f"cycle {cycle} (seed {seed})"
            zygote.stdin.write("fork\n")
            zygote.stdin.flush()
            startup = cycle % _STARTUP_EVERY == _STARTUP_EVERY - 1
            lines: list[list[str]] = []
            while not any(w[0] == "pid" for w in lines):
                lines.append(_line(zygote.stdout, where))
            live = pid = int(next(w for w in lines if w[0] == "pid")[1])
            if startup:
                time.sleep(rng.uniform(0.0, 0.03))
            else:
                marks: dict[str, float] = {}
                while "committed" not in marks:
                    lines.append(_line(zygote.stdout, where))
                    assert lines[-1][0] in ("restored", "committed", "pid"), (where, lines)
                    marks.setdefault(lines[-1][0], time.perf_counter())
                period = marks["committed"] - marks["restored"]  # the first save: snapshot, write, commit
                time.sleep((cycle % _STRATA + rng.random()) / _STRATA * period)
                saving_kills += 1
            os.kill(pid, signal.SIGKILL)
            live = 0
            while lines[-1][0] != "status":
                lines.append(_line(zygote.stdout, where))
            assert lines[-1][2:] == ["signal", str(int(signal.SIGKILL))], (
                f"{where}: child ended on its own: {lines[-1]}"
            )
            assert not [w for w in lines if w[0] == "MISMATCH"], (
                f"{where}: a restored state differs from what was saved"
            )
            assert "Traceback" not in errors.read_text(), errors.read_text()[-3000:]
            committed = [int(w[1]) for w in lines if w[0] == "committed"]
            said = [w[1] for w in lines if w[0] == "restored"]
            restored = None if not said or said[0] == "none" else int(said[0])
            if said:
                if last_committed is not None:
                    assert restored is not None and restored >= last_committed, (where, restored, last_committed)
                if ceiling is not None:
                    assert restored is None or restored <= ceiling, (where, restored, ceiling)  # never a partial step
            if committed:
                commits += len(committed)
                last_committed = committed[-1]
            # It was writing at most the step after its last reported commit (or after what it
            # restored). A start-up kill before "restored" leaves the previous bounds as they were.
            if said:
                ceiling = (committed[-1] if committed else restored or 0) + 1
    finally:
        if live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(live, signal.SIGKILL)
        zygote.stdin.close()
        try:
            zygote.wait(timeout=30)
        except subprocess.TimeoutExpired:
            zygote.kill()
            zygote.wait()
    assert saving_kills >= KILLS * 0.8 and commits >= saving_kills, (seed, saving_kills, commits)

    # Finally a fresh manager in this process: newest committed step, bit-exact, nothing temporary left.
    with CheckpointManager(directory, keep_last=2) as mgr:
        step, state = mgr.restore()
        assert step is not None and last_committed is not None and step >= last_committed, (seed, step)
        assert same(state, make_state(step))
        assert not [p for p in directory.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
