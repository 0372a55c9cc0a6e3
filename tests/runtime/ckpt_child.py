"""A training-like process the reliability tests start and SIGKILL.

loop DIR [ARCHIVE]            restore, check it bit-exact, then save steps forever ("committed N" after each)
rank DIR BOARD RANK WORLD SESSION LAST
                              restore with a shared-directory agreement, then save steps up to LAST,
                              all ranks in lock-step
restore DIR BOARD RANK WORLD SESSION
                              restore only, print "restored N" (or "restored none")
fork-hold DIR                 start a fork-snapshot save of 128 MiB, print "forked PID" (the writer child),
                              then sleep until killed

``loop`` saves with the manager's default snapshot mode: BERTH_CHECKPOINT_SNAPSHOT chooses it.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from berth.checkpoint import CheckpointManager, shared_directory


def make_state(step: int, rank: int = 0) -> dict[str, object]:
    """A small state whose every byte follows from (step, rank), so restores can be checked exactly."""
    rng = np.random.default_rng(step * 1009 + rank)
    return {
        "model": {"w": rng.standard_normal(3000).astype(np.float32), "b": rng.integers(0, 1 << 40, 257)},
        "opt": {"lr": 0.5 / (step + 1), "moments": [rng.standard_normal(100), step]},
        "step": step,
        "tag": f"step-{step}",
        "blob": rng.bytes(33),
    }


def same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


def report_restore(step: int | None, state: object, rank: int) -> None:
    if step is None:
        print("restored none", flush=True)
    elif same(state, make_state(step, rank)):
        print(f"restored {step}", flush=True)
    else:
        print(f"MISMATCH {step}", flush=True)
        sys.exit(3)


def loop(directory: str, archive: str | None) -> None:
    mgr = CheckpointManager(directory, keep_last=2, keep_every=7, archive=archive, chunk_size=4096)
    step, state = mgr.restore()
    report_restore(step, state, 0)
    current = 0 if step is None else step
    while True:
        current += 1
        mgr.save(current, make_state(current))
        mgr.wait()
        print(f"committed {current}", flush=True)


def rank_main(directory: str, board: str, rank: int, world: int, session: str, last: int | None) -> None:
    agree = shared_directory(board, rank, world, session, timeout=60)
    mgr = CheckpointManager(directory, rank=rank, world_size=world, keep_last=3, agree=agree, chunk_size=4096)
    step, state = mgr.restore()
    report_restore(step, state, rank)
    if last is None:
        mgr.close()
        return
    # Ranks advance in lock-step like a real job (a collective per step); when a rank dies the
    # others stop at this barrier, as they would hang in an all-reduce and then time out.
    barrier = shared_directory(board, rank, world, f"{session}-steps", timeout=5)
    for current in range((step or 0) + 1, last + 1):
        print(f"saving {current}", flush=True)
        mgr.save(current, make_state(current, rank), blocking=True)
        print(f"committed {current}", flush=True)
        barrier([current])
    mgr.close()


def fork_hold(directory: str) -> None:
    mgr = CheckpointManager(directory, snapshot="fork")
    mgr.save(1, {"w": np.ones(32 << 20, np.float32)})
    print(f"forked {mgr.snapshot_pid}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "loop":
        loop(rest[0], rest[1] if len(rest) > 1 else None)
    elif mode == "rank":
        rank_main(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4], int(rest[5]))
    elif mode == "restore":
        rank_main(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4], None)
    elif mode == "fork-hold":
        fork_hold(rest[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
