"""The flush ``berth backup`` asks of every rank, through the archive, against a real SeaweedFS on 127.0.0.1.

The ranks are real CheckpointManagers (the code a trainer runs), each with its flush watcher
polling the archive; the asking side is ``flush_all``, as ``berth backup`` calls it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from berth.checkpoint import CheckpointManager
from berth.runtime.agree import alone
from berth.runtime.archive import Archive
from berth.runtime.flush import RankFlush, flush_all

pytestmark = pytest.mark.s3
FAST = {"BERTH_FLUSH_POLL_S": "0.2"}


def _manager(root: Path, url: str, rank: int, world: int, environ: dict[str, str]) -> CheckpointManager:
    return CheckpointManager(root, rank=rank, world_size=world, archive=url, agree=alone, environ=environ)


def test_every_rank_answers_with_its_newest_archived_step_and_a_silent_rank_is_named(tmp_path: Path, s3: str) -> None:
    first = _manager(tmp_path / "a", s3, 0, 3, FAST)
    second = _manager(tmp_path / "b", s3, 1, 3, FAST)
    off = _manager(tmp_path / "c", s3, 2, 3, {"BERTH_FLUSH_POLL_S": "0"})  # watching turned off: never answers
    try:
        for step in (3, 6):
            first.save(step, {"w": [step]}, blocking=True)
        second.save(3, {"w": [3]}, blocking=True)
        off.save(3, {"w": [3]}, blocking=True)
        heard: list[RankFlush] = []
        started = time.monotonic()
        got = flush_all(s3, 3, timeout_s=4, progress=heard.append, poll_s=0.1)
        assert [(r.rank, r.step, r.archived, r.error) for r in got[:2]] == [(0, 6, True, None), (1, 3, True, None)]
        assert got[2].rank == 2 and not got[2].ok and "no answer within 4s" in (got[2].error or "")
        assert sorted(r.rank for r in heard) == [0, 1]  # progress hears each answer as it comes
        assert time.monotonic() - started >= 4  # it waited for the silent rank until the timeout
        assert 0 in Archive(s3).shards()[6]  # the answer is true: step 6 of rank 0 is in the archive

        # A second request gets new answers: rank 0 saved again since.
        first.save(9, {"w": [9]}, blocking=True)
        again = flush_all(s3, 2, timeout_s=10, poll_s=0.1)
        assert [(r.rank, r.step, r.archived) for r in again] == [(0, 9, True), (1, 3, True)]
    finally:
        for mgr in (first, second, off):
            mgr.close()
