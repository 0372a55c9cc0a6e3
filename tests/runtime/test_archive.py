"""The archive tier against a real SeaweedFS S3 server on 127.0.0.1."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import boto3
import numpy as np
import pytest

from berth.checkpoint import Archive, ArchiveError, CheckpointManager, CorruptCheckpoint, object_store
from berth.errors import BerthError

from .ckpt_child import make_state, same
from .conftest import Seaweed, child, rot_in_the_archive

pytestmark = pytest.mark.s3


def _keys(url: str) -> list[str]:
    archive = Archive(url)
    pages = archive.client.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_upload_then_restore_on_an_empty_volume(tmp_path: Path, s3: str) -> None:
    state = {"w": np.random.default_rng(0).standard_normal(300_000), "step": 3}
    with CheckpointManager(tmp_path / "zone-a", archive=s3, keep_last=1) as mgr:
        mgr.save(3, state)
        assert mgr.wait_archived(60)
    keys = _keys(s3)
    assert "run/step-000000000003/rank-00000/manifest.json" in keys
    assert "run/step-000000000003/rank-00000/tensors.safetensors" in keys
    # The pod moved zones: a new, empty volume. restore() fetches, verifies and loads.
    with CheckpointManager(tmp_path / "zone-b", archive=s3) as mgr:
        step, back = mgr.restore()
        assert step == 3 and same(back, state)
        assert mgr.steps() == [3]  # committed locally too


def test_multipart_parallel_upload_of_a_large_shard(tmp_path: Path, s3: str) -> None:
    w = np.random.default_rng(1).integers(0, 255, 40 << 20, dtype=np.uint8)
    with CheckpointManager(tmp_path / "a", archive=s3) as mgr:
        mgr.archive = Archive(s3, part_size=5 << 20, concurrency=4)  # 8 parts
        mgr.save(1, {"w": w}, blocking=True)
        assert mgr.wait_archived(120)
    with CheckpointManager(tmp_path / "b", archive=s3) as mgr:
        step, back = mgr.restore()
    assert step == 1 and isinstance(back, dict) and back["w"].tobytes() == w.tobytes()


def test_archive_retention_and_local_retention_are_separate(tmp_path: Path, s3: str) -> None:
    with CheckpointManager(tmp_path / "c", archive=s3, keep_last=1, archive_keep_last=2, archive_keep_every=3) as mgr:
        for step in range(1, 8):
            mgr.save(step, {"x": step})
            assert mgr.wait_archived(60)
        assert mgr.steps() == [7]
        assert Archive(s3).steps(0) == [3, 6, 7]
    manifests = [k for k in _keys(s3) if k.endswith("manifest.json")]
    assert len(manifests) == 3 and all(k.startswith("run/step-") for k in manifests)


def test_corrupted_local_step_is_fetched_again_from_the_archive(tmp_path: Path, s3: str) -> None:
    with CheckpointManager(tmp_path / "c", archive=s3, chunk_size=4096) as mgr:
        mgr.save(1, make_state(1))
        mgr.save(2, make_state(2))
        assert mgr.wait_archived(60)
    shard = tmp_path / "c" / "step-000000000002" / "rank-00000" / "tensors.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with CheckpointManager(tmp_path / "c", archive=s3) as mgr:
        step, state = mgr.restore()
    assert step == 2 and same(state, make_state(2))


def test_fetch_of_a_corrupted_archive_object_commits_nothing(tmp_path: Path, s3: str) -> None:
    with CheckpointManager(tmp_path / "a", archive=s3, chunk_size=4096) as mgr:
        mgr.save(1, make_state(1))
        assert mgr.wait_archived(60)
    name = rot_in_the_archive(s3, 1, 0)
    with CheckpointManager(tmp_path / "b", archive=s3) as mgr:
        with pytest.raises(CorruptCheckpoint) as err:
            mgr.fetch(1)
        assert name in err.value.message and err.value.chunk is not None  # names the file and chunk
        # Bit rot never becomes a restorable local step, and no staging directory is left behind.
        assert mgr.steps() == [] and not list((tmp_path / "b").glob(".tmp-*"))
        assert mgr.restore() == (None, None)
        assert mgr.steps() == []


def test_missing_manifest_object_is_an_archive_error(s3: str) -> None:
    """restore() falls back on ArchiveError; a raw botocore error would escape it."""
    with pytest.raises(ArchiveError, match="reading the manifest of step 5 rank 0"):
        Archive(s3).manifest(5, 0)


def test_close_stops_the_uploader_even_when_the_last_save_failed(tmp_path: Path, s3: str) -> None:
    mgr = CheckpointManager(tmp_path / "c", archive=s3)
    (tmp_path / "c" / "step-000000000001").write_text("not a directory")  # the commit rename fails
    mgr.save(1, {"x": 1})
    with pytest.raises(OSError):
        mgr.close()
    assert mgr._uploader is not None and not mgr._uploader.is_alive()
    with CheckpointManager(tmp_path / "c", archive=s3) as again:  # the lock was released too
        assert again.steps() == []


def test_download_onto_a_full_volume_says_so(tmp_path: Path, s3: str, small_tmpfs: Path) -> None:
    w = np.random.default_rng(3).integers(0, 255, 6 << 20, dtype=np.uint8)  # 6 MiB, the tmpfs holds 4
    with CheckpointManager(tmp_path / "c", archive=s3) as mgr:
        mgr.save(1, {"w": w}, blocking=True)
        assert mgr.wait_archived(60)
    with CheckpointManager(small_tmpfs / "c", archive=s3) as mgr, pytest.raises(BerthError) as err:
        mgr.restore()  # raises: (None, None) would restart the run from scratch
    assert f"not enough space in {small_tmpfs / 'c'}" in err.value.message, err.value.message
    assert not [p for p in (small_tmpfs / "c").iterdir() if p.name.startswith(".tmp-")]


def test_object_store_agreement(tmp_path: Path, s3: str) -> None:
    world = 3
    results: dict[int, object] = {}

    def rank(r: int) -> None:
        with CheckpointManager(
            tmp_path / f"r{r}", rank=r, world_size=world, agree=object_store(s3, r, world, "job-1", timeout=30)
        ) as mgr:
            for step in [1, 2, 3] if r != 1 else [1, 2]:
                mgr.save(step, make_state(step, r), blocking=True)
            results[r] = mgr.restore()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2]
    assert {results[r][0] for r in range(world)} == {2}  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_server_killed_during_upload_then_restarted(tmp_path: Path, s3: str, seaweed: Seaweed) -> None:
    w = np.random.default_rng(2).integers(0, 255, 96 << 20, dtype=np.uint8)
    mgr = CheckpointManager(tmp_path / "c", archive=s3, keep_last=1)
    mgr.archive = Archive(s3, part_size=5 << 20, concurrency=2)
    try:
        mgr.save(1, {"w": w}, blocking=True)
        # Kill the server once the upload is under way (some parts sent, manifest not yet).
        client = boto3.client("s3")
        bucket = s3.split("/")[2]
        deadline = time.monotonic() + 60
        uploads: list[object] = []
        while not uploads and time.monotonic() < deadline:
            uploads = list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
            time.sleep(0.02)
        assert uploads, "the upload never started"
        seaweed.kill()
        mgr.save(2, {"w": w[:10]}, blocking=True)  # keep_last=1, but step 1 is not archived yet
        assert mgr.steps() == [1, 2], "local pruning must wait for the upload"
        time.sleep(2)  # the uploader is failing and backing off now
        seaweed.start()

        def manifests_list_complete_data() -> None:
            for key in _keys(s3):
                if key.endswith("manifest.json"):
                    data_key = key.replace("manifest.json", "tensors.safetensors")
                    listed = Archive(s3).manifest(int(key.split("step-")[1][:12]), 0).file("tensors.safetensors")
                    assert client.head_object(Bucket=bucket, Key=data_key)["ContentLength"] == listed.size

        # Whenever a manifest is visible, the data it lists is complete: checked all through the
        # resumed upload, not only once before it restarts.
        deadline = time.monotonic() + 180
        while not mgr.wait_archived(0.2):
            assert time.monotonic() < deadline, "the upload never finished"
            manifests_list_complete_data()
        manifests_list_complete_data()
        assert mgr.steps() == [2]  # now that step 1 is archived, retention removed it
        assert Archive(s3).steps(0) == [1, 2]
    finally:
        mgr.close(wait_archive=0)
    with CheckpointManager(tmp_path / "fresh", archive=s3) as fresh:
        step, back = fresh.restore(step=1)
    assert step == 1 and isinstance(back, dict) and back["w"].tobytes() == w.tobytes()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_during_uploads_never_exposes_a_partial_step(tmp_path: Path, s3: str) -> None:
    rng = random.Random(7)
    directory = tmp_path / "c"
    last_committed = 0
    for _ in range(15):
        proc = child("loop", str(directory), s3)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("restored"), proc.communicate()[1][-2000:]
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert "MISMATCH" not in out and "Traceback" not in err, err[-2000:]
        last_committed = max([last_committed, *(int(w.split()[1]) for w in out.split("\n") if "committed" in w)])
    archive = Archive(s3)
    visible = archive.steps(0)
    for step in {*rng.sample(visible, min(4, len(visible))), visible[-1]}:  # visible steps are complete
        with CheckpointManager(tmp_path / f"fresh-{step}", archive=s3) as fresh:
            got, state = fresh.restore(step=step)
        assert got == step and same(state, make_state(step))
    with CheckpointManager(directory, archive=s3) as mgr:
        step, state = mgr.restore()
        assert step is not None and step >= last_committed and same(state, make_state(step))
        assert mgr.wait_archived(120)
    assert max(archive.steps(0)) >= last_committed
