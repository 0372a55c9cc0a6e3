"""berth stage against a real SeaweedFS: parallel, verified, resumable after SIGKILL, safe on a full volume."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.runtime.stage import STATE_DIR, StageError, StageStats, stage

from ..conftest import berth_process
from .conftest import Seaweed


def _fill(client: Any, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:  # boto3 clients are thread-safe
        list(
            pool.map(
                lambda item: client.put_object(Bucket=bucket, Key=f"{prefix}/{item[0]}", Body=item[1]), files.items()
            )
        )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and STATE_DIR not in p.relative_to(root).parts
    }


def stage_until_journalled(
    seaweed: Seaweed, s3: str, tmp_path: Path, count: int, journalled: int, size: int = 400_000
) -> tuple[dict[str, bytes], str, Path, subprocess.Popen[str]]:
    """``count`` random objects, and `berth stage` of them one at a time in a child, once ``journalled`` are done.

    Returns the objects, the source, DEST and the still running child. The journal takes its first batch a
    second (FLUSH_SECONDS) into the run: the child must still be running then.
    """
    bucket = s3.split("/")[2]
    files = {f"d/{i:04d}.bin": os.urandom(size) for i in range(count)}
    _fill(seaweed.client(), bucket, "ds", files)
    source, dest = f"s3://{bucket}/ds", tmp_path / "vol"
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth", "stage", source, str(dest), "--concurrency", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = dest / STATE_DIR / "journal"
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_text().count("\n") >= journalled):
        assert proc.poll() is None, f"stage finished before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return files, source, dest, proc


def test_stage_copies_verifies_and_skips_what_is_up_to_date(seaweed: Seaweed, s3: str, tmp_path: Path) -> None:
    bucket = s3.split("/")[2]
    client = seaweed.client()
    files = {f"shard-{i:03d}.bin": os.urandom(1000 + i) for i in range(40)}
    files["nested/dir/big.bin"] = os.urandom(5 << 20)  # several parts at part_size 1 MiB
    files["empty.txt"] = b""
    _fill(client, bucket, "data", files)
    dest = tmp_path / "vol"
    stats = stage(f"s3://{bucket}/data", dest, part_size=1 << 20)
    assert _tree(dest) == files
    assert (stats.files, stats.fetched, stats.skipped) == (42, 42, 0)
    manifest = json.loads((dest / STATE_DIR / "manifest.json").read_text())
    assert manifest["files"]["nested/dir/big.bin"]["size"] == 5 << 20
    assert not (dest / STATE_DIR / "journal").exists()

    again = stage(f"s3://{bucket}/data", dest)
    assert (again.fetched, again.skipped, again.bytes_done) == (0, 42, 0)

    files["shard-007.bin"] = b"changed"
    _fill(client, bucket, "data", {"shard-007.bin": b"changed"})
    third = stage(f"s3://{bucket}/data", dest)
    assert (third.fetched, third.skipped) == (1, 41)
    assert _tree(dest) == files

    # The CLI: one line of text, or JSON with camelCase keys.
    out = berth_process("stage", f"s3://{bucket}/data", str(dest), "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["skipped"] == 42

    # An http(s) URL (a presigned one here: the same server, no credentials in the URL's host).
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "data/nested/dir/big.bin"})
    single = tmp_path / "single"
    stage(url, single, part_size=1 << 20)
    assert (single / "big.bin").read_bytes() == files["nested/dir/big.bin"]


def test_stage_resumes_after_sigkill_without_refetching_complete_files(
    seaweed: Seaweed, s3: str, tmp_path: Path
) -> None:
    # Many small files: 300 of 400 kB were all staged in 1.1 s once, before the test could kill the child.
    files, source, dest, proc = stage_until_journalled(seaweed, s3, tmp_path, 1000, 20, size=50_000)
    journal = dest / STATE_DIR / "journal"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = journal.read_text().count("\n")
    assert 20 <= done_before < 1000
    stats = stage(source, dest)
    assert stats.skipped >= done_before  # complete files were not fetched again
    assert stats.fetched == 1000 - stats.skipped
    assert _tree(dest) == files
    assert not any((dest / STATE_DIR / "partial").rglob("*.bin"))


def test_full_volume_fails_clearly_and_keeps_what_was_there(seaweed: Seaweed, s3: str, small_tmpfs: Path) -> None:
    bucket = s3.split("/")[2]
    _fill(seaweed.client(), bucket, "big", {"a.bin": os.urandom(3 << 20), "b.bin": os.urandom(3 << 20)})
    keep = small_tmpfs / "keep.bin"
    data = os.urandom(1 << 20)
    keep.write_bytes(data)
    out = berth_process("stage", f"s3://{bucket}/big", str(small_tmpfs))
    assert out.returncode == 1, out.stderr
    assert "not enough space" in out.stderr and "Traceback" not in out.stderr
    assert keep.read_bytes() == data
    assert _tree(small_tmpfs) == {"keep.bin": data}


def test_a_listing_of_many_pages_is_staged_while_it_is_listed(
    seaweed: Seaweed, s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 7 objects: downloads start with the first page, and every page's files land, once."""
    import berth.runtime.stage as stage_module

    monkeypatch.setattr(stage_module, "LIST_PAGE", 7)
    bucket = s3.split("/")[2]
    files = {f"p/{i:03d}.bin": os.urandom(2000 + i) for i in range(40)}
    _fill(seaweed.client(), bucket, "paged", files)
    dest = tmp_path / "vol"
    stats = stage(f"s3://{bucket}/paged", dest)
    assert _tree(dest) == files
    assert (stats.files, stats.fetched, stats.bytes_total) == (40, 40, sum(len(v) for v in files.values()))
    half = stage(f"s3://{bucket}/paged", tmp_path / "shard", shard=(1, 2))  # shards still split the whole listing
    assert _tree(tmp_path / "shard") == {k: v for i, (k, v) in enumerate(sorted(files.items())) if i % 2 == 1}
    assert half.files == 20


def test_a_volume_that_fills_on_a_later_page_stops_clearly_and_keeps_the_staged_files(
    seaweed: Seaweed, s3: str, small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page fits the 4 MiB volume, the whole listing does not: the check before each page says so."""
    import berth.runtime.stage as stage_module

    monkeypatch.setattr(stage_module, "LIST_PAGE", 2)
    bucket = s3.split("/")[2]
    files = {f"{i}.bin": os.urandom(900_000) for i in range(6)}  # 2 pages fit, with room for the journal
    _fill(seaweed.client(), bucket, "fills", files)
    with pytest.raises(StageError, match="not enough space") as failed:
        stage(f"s3://{bucket}/fills", small_tmpfs, concurrency=1)
    assert "files already staged are intact" in (failed.value.hint or "")
    staged = _tree(small_tmpfs)
    assert 2 <= len(staged) < 6 and all(files[name] == data for name, data in staged.items())
    journal = (small_tmpfs / STATE_DIR / "journal").read_text()
    assert journal.count("\n") == len(staged)  # each kept file journalled: a rerun will not fetch it again
    assert not any((small_tmpfs / STATE_DIR / "partial").rglob("*.bin"))


def test_source_changing_mid_stage_fails_and_keeps_complete_files(seaweed: Seaweed, s3: str, tmp_path: Path) -> None:
    bucket = s3.split("/")[2]
    client = seaweed.client()
    _fill(client, bucket, "moving", {f"{i}.bin": os.urandom(100_000) for i in range(5)})
    changed = []

    def rewrite(stats: StageStats) -> None:
        if not changed and stats.fetched >= 1:
            changed.append(True)
            _fill(client, bucket, "moving", {"4.bin": b"new version"})

    with pytest.raises(StageError, match=r"changed while staging|does not match"):
        stage(f"s3://{bucket}/moving", tmp_path / "vol", concurrency=1, progress=rewrite)
    staged = _tree(tmp_path / "vol")
    assert "4.bin" not in staged and len(staged) >= 1


def test_a_big_file_changing_between_its_parts_fails_and_leaves_no_part_behind(
    seaweed: Seaweed, s3: str, tmp_path: Path
) -> None:
    """Ranged GETs carry If-Match: a part asked after the object changed fails (412), the parts not started
    are skipped, the file never reaches DEST and its partial copy is removed."""
    bucket = s3.split("/")[2]
    client = seaweed.client()
    _fill(client, bucket, "parts", {"big.bin": os.urandom(6 << 20)})
    asked: list[int] = []

    def rewrite(stats: StageStats) -> None:
        asked.append(stats.bytes_done)
        if len(asked) == 1:  # after the first part: a new version, so the next part's If-Match fails
            _fill(client, bucket, "parts", {"big.bin": os.urandom(6 << 20)})

    dest = tmp_path / "vol"
    with pytest.raises(StageError, match="changed while staging"):
        stage(f"s3://{bucket}/parts", dest, concurrency=1, part_size=1 << 20, progress=rewrite)
    assert asked == [1 << 20]  # one part landed; the other five were refused or never asked
    assert _tree(dest) == {} and not any((dest / STATE_DIR / "partial").rglob("*.bin"))


def test_bad_sources_are_one_line(seaweed: Seaweed, s3: str, tmp_path: Path) -> None:
    missing = berth_process("stage", "s3://no-such-bucket-berth/x", str(tmp_path / "v"))
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr and "Traceback" not in missing.stderr
    bad = berth_process("stage", "ftp://host/x", str(tmp_path / "v"))
    assert bad.returncode == 2 and "neither s3://" in bad.stderr
    wrong = berth_process(
        "stage", f"s3://{s3.split('/')[2]}/run", str(tmp_path / "v"), env={"AWS_SECRET_ACCESS_KEY": "wrong"}
    )
    assert wrong.returncode == 1 and "check AWS_SECRET_ACCESS_KEY" in wrong.stderr, wrong.stderr


class _ETagHandler(http.server.SimpleHTTPRequestHandler):
    """http.server plus an ETag header: the MD5 a test chooses, like an S3 store's single-part ETag."""

    etag = ""

    def end_headers(self) -> None:
        self.send_header("ETag", f'"{self.etag}"')
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def etag_server(tmp_path: Path) -> Iterator[tuple[str, type[_ETagHandler]]]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/www, whose ETag the test sets."""
    www = tmp_path / "www"
    www.mkdir()
    handler = type("Handler", (_ETagHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_md5_is_checked_on_the_bytes_as_they_arrive(
    etag_server: tuple[str, type[_ETagHandler]], tmp_path: Path
) -> None:
    """The MD5 of a one-GET file is hashed while it is received: a wrong one fails, and nothing lands in DEST."""
    base, handler = etag_server
    data = os.urandom(300_000)
    (tmp_path / "www" / "obj.bin").write_bytes(data)
    handler.etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    good = stage(f"{base}/obj.bin", tmp_path / "good")
    assert (good.fetched, (tmp_path / "good" / "obj.bin").read_bytes()) == (1, data)

    handler.etag = hashlib.md5(data[:-1] + b"x", usedforsecurity=False).hexdigest()  # one byte differs
    with pytest.raises(StageError, match="MD5 does not match"):
        stage(f"{base}/obj.bin", tmp_path / "bad")
    assert _tree(tmp_path / "bad") == {}
