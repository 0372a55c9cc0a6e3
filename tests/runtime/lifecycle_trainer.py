"""A trainer for the lifecycle tests: what `berth run` supervises in a rendered pod, with faults on demand.

Env (besides the pod's): TEST_JOURNAL (a directory every rank appends events to), TEST_VOLUMES
(every rank's checkpoint directory, comma-separated: to check a resume step exists on all of them),
TEST_STEPS, TEST_STEP_S, TEST_FAIL ("RANK:STEP:once", "RANK:STEP:always", or "RANK:STEP:late": once,
after every other rank finished), TEST_COLLECTIVE_TIMEOUT
(seconds a step waits for its peers before it fails with exit 1, as a NCCL/gloo collective does
when a peer vanished; unset: forever), TEST_STEPS_FILE (a file that, once it exists, holds the
number of steps instead of TEST_STEPS: read before every step, so a test decides when a run may
finish), TEST_STOP_S (seconds the final save takes after SIGTERM: a big state on a slow volume).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from berth.checkpoint import CheckpointManager
from berth.runtime import gang, preempt
from berth.runtime.store import scan_steps

rank = int(os.environ["POD_INDEX"])
journal = Path(os.environ["TEST_JOURNAL"])
gen = int(os.environ.get("BERTH_GENERATION") or 0)
world = int(os.environ["BERTH_REPLICAS"])


def log(event: str, **fields: object) -> None:
    line = json.dumps({"ev": event, "rank": rank, "gen": gen, "pid": os.getpid(), "t": time.time(), **fields})
    fd = os.open(journal / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def completed(checkpoints: Path) -> bool:
    """The rank of this checkpoint directory completed (its supervisor's state, one level up)."""
    try:
        return bool(json.loads((checkpoints.parent / ".berth" / "run.json").read_text()).get("completed"))
    except (OSError, ValueError):
        return False


def total_steps(default: int) -> int:
    path = os.environ.get("TEST_STEPS_FILE")
    try:
        return int(Path(path).read_text()) if path else default
    except (OSError, ValueError):  # not written yet (it is written atomically)
        return default


def main() -> int:
    preempt.install()
    # Two trainers of one rank at once would both want this lock: the kernel says if another holds it.
    lock = os.open(journal / f"trainer-{rank}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("overlap")
        fcntl.flock(lock, fcntl.LOCK_EX)
    steps, step_s = int(os.environ.get("TEST_STEPS", "20")), float(os.environ.get("TEST_STEP_S", "0.05"))
    fail_rank, fail_step, fail_mode = (os.environ.get("TEST_FAIL") or "-1:-1:once").split(":")
    collective_timeout = float(os.environ.get("TEST_COLLECTIVE_TIMEOUT") or "inf")
    stop_s = float(os.environ.get("TEST_STOP_S") or 0)
    mgr = CheckpointManager(keep_last=3, agree=gang.agreement(timeout=60), metrics_port=None)
    step, _state = mgr.restore()
    if step is not None:
        for directory in os.environ["TEST_VOLUMES"].split(","):
            if not scan_steps(Path(directory)).get(step):
                log("resume-missing", step=step, volume=directory)
    log("start", resume=step, resumeEnv=os.environ.get("BERTH_RESUME_STEP"))
    print(f"rank {rank} generation {gen} resumes from {step}", flush=True)
    volumes = [Path(d) for d in os.environ["TEST_VOLUMES"].split(",")]
    s = step or 0
    while s < (steps := total_steps(steps)):
        s += 1
        time.sleep(step_s)
        # Lock-step like an all-reduce: step s waits until every rank committed step s - 1.
        waiting = time.monotonic()
        while s > (step or 0) + 1 and not all(scan_steps(v).get(s - 1) for v in volumes):
            if preempt.should_stop():  # the save of step s - 1 may be in flight: it commits first
                time.sleep(stop_s)
                mgr.wait()
                log("final", step=s - 1)
                mgr.close(wait_archive=0)
                return 143
            if time.monotonic() - waiting > collective_timeout:
                print(f"collective timed out at step {s}: a peer is gone", flush=True)
                log("collective-timeout", step=s)
                return 1
            time.sleep(0.005)
        marker = journal / f"failed-{rank}-{s}"
        if rank == int(fail_rank) and s == int(fail_step) and (fail_mode == "always" or not marker.exists()):
            if fail_mode == "late":  # once every other rank's supervisor recorded its completion
                while sum(completed(Path(v)) for v in os.environ["TEST_VOLUMES"].split(",")) < world - 1:
                    time.sleep(0.01)
            marker.touch()
            print(f"boom at step {s}", flush=True)
            log("fail", step=s)
            return 1
        mgr.save(s, {"step": s, "w": np.arange(256, dtype=np.float32) * s})
        if preempt.should_stop():
            time.sleep(stop_s)
            mgr.wait()
            log("final", step=s)
            print(f"stopped after saving step {s}", flush=True)
            mgr.close(wait_archive=0)
            return 143
    mgr.close()
    log("done", step=steps)
    print(f"rank {rank} finished {steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
