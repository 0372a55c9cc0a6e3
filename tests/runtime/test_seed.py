"""``berth seed`` (the init container of ``restore --from-archive``) against a real SeaweedFS on 127.0.0.1.

The archive is written by the real CheckpointManager (small chunks, so a shard has many); the
store is SIGKILLed mid-download and restarted on the same data, as a crashed object store would be.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from berth.checkpoint import CheckpointManager
from berth.runtime.agree import alone
from berth.runtime.archive import Archive
from berth.runtime.seed import ArchiveUnreadable, NoCompleteStep, newest_agreed, seed_rank
from berth.sandbox.proc import free_ports

from ..conftest import berth_process
from .ckpt_child import make_state, same
from .conftest import Seaweed

pytestmark = pytest.mark.s3
CHUNK = 256 << 10


def _archive(url: str, root: Path, rank: int, world: int, steps: list[int], state: object | None = None) -> None:
    """Rank ``rank`` of a ``world``-rank run saves ``steps`` and uploads each to ``url``."""
    with CheckpointManager(
        root, rank=rank, world_size=world, archive=url, keep_last=None, chunk_size=CHUNK, agree=alone
    ) as mgr:
        for step in steps:
            mgr.save(step, state if state is not None else make_state(step, rank), blocking=True)
        assert mgr.wait_archived(60)


def _restored(root: Path, rank: int, world: int) -> tuple[int | None, object]:
    """What a trainer with no archive configured resumes from on this volume."""
    with CheckpointManager(root, rank=rank, world_size=world, agree=alone, environ={}) as mgr:
        return mgr.restore()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every checkpoint file with size and mtime (the rank's lock file, rewritten by each opener, left out)."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".lock-")]
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_seed_takes_the_newest_step_every_rank_has_and_never_touches_newer_local_work(tmp_path: Path, s3: str) -> None:
    _archive(s3, tmp_path / "old-0", 0, 2, [5, 10, 15])  # rank 0 got one step further than rank 1
    _archive(s3, tmp_path / "old-1", 1, 2, [5, 10])
    assert newest_agreed(s3, 2).step == 10
    with pytest.raises(NoCompleteStep):
        newest_agreed(s3, 3)  # no rank 2 anywhere

    fresh = tmp_path / "fresh-0"
    first = seed_rank(fresh, s3, 0, 2)
    assert (first.action, first.step, first.local_step, first.bytes_kept) == ("seeded", 10, None, 0)
    assert first.bytes_fetched == Archive(s3).manifest(10, 0).nbytes
    step, state = _restored(fresh, 0, 2)
    assert step == 10 and same(state, make_state(10, 0))
    assert not [p for p in fresh.iterdir() if p.name.startswith(".seed-")], "the staging directory was committed"

    # A pod restart: the step is there, nothing is fetched or rewritten.
    before = _tree(fresh)
    again = seed_rank(fresh, s3, 0, 2)
    assert (again.action, again.bytes_fetched) == ("present", 0)
    assert _tree(fresh) == before

    # The trainer saved step 12 since (not archived): a later restart must keep it, not seed over it.
    with CheckpointManager(fresh, rank=0, world_size=2, keep_last=None, chunk_size=CHUNK, environ={}) as mgr:
        mgr.save(12, make_state(12, 0), blocking=True)
    before = _tree(fresh)
    newer = seed_rank(fresh, s3, 0, 2)
    assert (newer.action, newer.local_step, newer.bytes_fetched) == ("newer-local", 12, 0)
    assert _tree(fresh) == before

    # A volume holding only an older step of its own gets the archive's step beside it, the old one kept.
    other = tmp_path / "fresh-1"
    with CheckpointManager(other, rank=1, world_size=2, keep_last=None, chunk_size=CHUNK, environ={}) as mgr:
        mgr.save(3, make_state(3, 1), blocking=True)
    seeded = seed_rank(other, s3, 1, 2)
    assert (seeded.action, seeded.local_step) == ("seeded", 3)
    with CheckpointManager(other, rank=1, world_size=2, agree=alone, environ={}) as mgr:
        assert mgr.steps() == [3, 10]
        assert same(mgr.restore(step=3)[1], make_state(3, 1))
        assert same(mgr.restore()[1], make_state(10, 1))


def test_seed_resumes_after_the_store_is_sigkilled_without_refetching_good_chunks(
    tmp_path: Path, s3: str, seaweed: Seaweed
) -> None:
    w = np.random.default_rng(7).integers(0, 255, 4 << 20, dtype=np.uint8)  # 16 chunks of 256 KiB
    _archive(s3, tmp_path / "src", 0, 1, [40], {"w": w})
    volume = tmp_path / "volume"
    with CheckpointManager(volume, keep_last=None, chunk_size=CHUNK, environ={}) as mgr:
        mgr.save(7, {"w": w[:1000]}, blocking=True)  # what the volume held before: must survive everything
    kept_before = _tree(volume / "step-000000000007")

    moved: list[int] = []

    def kill_after_five_chunks(n: int) -> None:
        if n:  # a zero: no chunk of that file was already there
            moved.append(n)
        if len(moved) == 5:
            seaweed.kill()

    with pytest.raises(ArchiveUnreadable) as failed:
        seed_rank(volume, s3, 0, 1, archive=Archive(s3, concurrency=1), progress=kill_after_five_chunks)
    assert "cannot reach the object store" in failed.value.message
    assert seaweed.proc is None
    assert _tree(volume / "step-000000000007") == kept_before
    assert [p.name for p in volume.iterdir() if p.name.startswith("step-")] == ["step-000000000007"]
    assert [p.name for p in volume.iterdir() if p.name.startswith(".seed-")] == [
        ".seed-step-000000000040-rank-00000"
    ], "the partial download stays for the next attempt"

    seaweed.start()  # same ports, same data
    resumed = seed_rank(volume, s3, 0, 1)
    manifest = Archive(s3).manifest(40, 0)
    total = sum(len(f.crc32) for f in manifest.files)
    assert resumed.action == "seeded" and resumed.chunks_kept >= 5, resumed
    assert resumed.chunks_kept + resumed.chunks_fetched == total
    assert resumed.bytes_kept + resumed.bytes_fetched == manifest.nbytes
    step, state = _restored(volume, 0, 1)
    assert step == 40 and isinstance(state, dict) and state["w"].tobytes() == w.tobytes()
    assert _tree(volume / "step-000000000007") == kept_before


def test_seed_command_refusals_one_line_each_with_exit_codes(tmp_path: Path, s3: str, seaweed: Seaweed) -> None:
    def seed(url: str, env: dict[str, str] | None = None, world: int = 2) -> tuple[int, str]:
        done = berth_process(
            "seed", str(tmp_path / "v"), "--from", url, "--rank", "0", "--world", str(world), env=env, timeout=60
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, done.stderr

    _archive(s3, tmp_path / "r0", 0, 2, [4])  # rank 1 never archived anything
    code, err = seed(s3)
    assert code == 3 and "no step has a complete shard for every one of 2 ranks" in err and "step 4: ranks [0]" in err

    code, err = seed(s3, {"AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert code == 1 and "refused the credentials" in err, err

    code, err = seed("s3://no-such-bucket-here/run")
    assert code == 1 and "bucket no-such-bucket-here does not exist" in err, err

    closed = f"http://127.0.0.1:{free_ports(1)[0]}"  # a port nothing listens on
    code, err = seed(s3, {"AWS_ENDPOINT_URL": closed})
    assert code == 1 and f"cannot reach the object store at {closed}" in err, err
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())

    done = berth_process(
        "seed", str(tmp_path / "v"), "--from", s3, "--rank", "0", "--world", "1", "--report", str(tmp_path / "r.json")
    )
    # World 1 against a 2-rank archive: step 4 has rank 0, but it was saved by 2 ranks.
    assert done.returncode == 3 and "was saved by [2] ranks, the cluster has 1 replicas" in done.stderr
    assert not (tmp_path / "r.json").exists()

    _archive(s3, tmp_path / "r1", 1, 2, [4])  # now every rank has step 4
    done = berth_process(
        "seed", str(tmp_path / "v"), "--from", s3, "--rank", "1", "--world", "2", "--report", str(tmp_path / "r.json")
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["rank"], report["step"], report["action"], report["bytesKept"]) == (1, 4, "seeded", 0)
    assert report["bytesFetched"] == Archive(s3).manifest(4, 1).nbytes
    assert os.environ["AWS_ENDPOINT_URL"] == seaweed.endpoint
