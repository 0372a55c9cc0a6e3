"""Datasets into a volume: ``berth stage SRC DEST``, parallel, resumable, verified, never destructive.

Sources: ``s3://bucket/prefix`` (every object under the prefix; credentials and endpoint from
boto3's standard environment, like the archive) or one ``https://`` (or ``http://``) URL. The bytes
move through the archive's download path (:class:`berth.runtime.transfer.RawHTTP`: presigned
URLs, ranged GETs in parallel, ``readinto`` a reused buffer).

What lands in DEST, and in what order, is what makes it safe:

- each file is written to ``DEST/.berth-stage/partial/…`` and only renamed over its place once
  complete and verified: its size, the ETag it had when listed (every ranged GET sends
  ``If-Match``, so a source that changes mid-stage fails instead of mixing versions) and, for a
  single-part ETag, the MD5 of the bytes;
- verified files are appended to ``DEST/.berth-stage/journal`` (one line each, ``O_APPEND``) in
  batches, at most a second apart, each after a ``syncfs`` made their data durable, so a run killed
  with SIGKILL (or a power loss) resumes without fetching a journalled file again; at the end the
  journal is folded into ``DEST/.berth-stage/manifest.json`` (path → size, ETag);
- a file whose manifest entry matches the listing (and whose local size agrees) is skipped;
- before anything is written, the free space of DEST is compared with what must be fetched: a
  full volume is one error line, and what DEST held before is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from berth.contract import STAGE_MANIFEST, STAGE_STATE_DIR
from berth.errors import BerthError, UsageError
from berth.runtime.transfer import RawHTTP, SourceChanged, TransferError

STATE_DIR = STAGE_STATE_DIR
PART_SIZE = 16 << 20
CONCURRENCY = 16
PART_CONCURRENCY = 8  # ranged GETs in flight across the big files
# Complete files are journalled in batches, each after one syncfs(2) made their data durable: an fsync
# per file cost a third of a 2,000-small-file stage. A kill loses at most this much finished work.
FLUSH_SECONDS = 1.0
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")

Progress = Callable[["StageStats"], None]


class StageError(BerthError):
    """Staging failed (source, network or volume); what DEST held before is intact."""


@dataclass(frozen=True)
class SourceFile:
    """One object to stage: its path under DEST, size, ETag (unquoted) and a GET URL."""

    path: str
    size: int
    etag: str
    url: str


@dataclass
class StageStats:
    """Counts for progress and the final report (camelCase in JSON)."""

    files: int = 0
    bytes_total: int = 0
    skipped: int = 0
    fetched: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)

    seconds: float | None = None  # set when the run ends; until then, the time so far

    def elapsed(self) -> float:
        """Seconds since the start (the whole run once it ended)."""
        return self.seconds if self.seconds is not None else max(time.monotonic() - self.started, 1e-9)

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        elapsed = self.elapsed()
        return {
            "files": self.files,
            "bytesTotal": self.bytes_total,
            "skipped": self.skipped,
            "fetched": self.fetched,
            "bytesFetched": self.bytes_done,
            "seconds": round(elapsed, 3),
            "bytesPerSecond": int(self.bytes_done / elapsed),
        }


def _safe_relpath(key: str) -> str | None:
    """The object key as a path under DEST; None for directory markers; hostile keys refused."""
    if not key or key.endswith("/"):
        return None
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("..", ".", "") for part in path.parts) or path.parts[0] == STATE_DIR:
        raise StageError(f"source key {key!r} is not a safe relative path", "rename the object")
    return str(path)


def list_source(source: str) -> list[SourceFile]:
    """Every file of ``source`` with its size and ETag (raises StageError/UsageError with one line)."""
    if source.startswith("s3://"):
        return _list_s3(source)
    if source.startswith(("https://", "http://")):
        return [_head_url(source)]
    raise UsageError(f"source {source!r} is neither s3://bucket/prefix nor an https:// URL")


def _list_s3(source: str) -> list[SourceFile]:
    from botocore.exceptions import BotoCoreError, ClientError

    from berth.runtime.archive import make_client, parse_url

    bucket, prefix = parse_url(source)
    client = make_client()
    base = f"{prefix}/" if prefix else ""
    out: list[SourceFile] = []
    try:
        presign = _presigner(client, bucket)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                rel = _safe_relpath(obj["Key"][len(base) :])
                if rel is None:
                    continue
                out.append(SourceFile(rel, int(obj["Size"]), obj["ETag"].strip('"'), presign(obj["Key"])))
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        hint = {
            "NoSuchBucket": f"bucket {bucket!r} does not exist at this endpoint",
            "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID / the Secret's keys",
            "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY / the Secret's keys",
            "AccessDenied": "the credentials may not list this bucket",
        }.get(code, "check the endpoint, bucket and credentials")
        raise StageError(f"cannot list {source}: {code or err}", hint) from None
    except BotoCoreError as err:
        raise StageError(f"cannot list {source}: {err}", "is the endpoint (AWS_ENDPOINT_URL) reachable?") from None
    if not out:
        raise StageError(f"{source} holds no objects", "check the prefix (it is a folder: s3://bucket/prefix)")
    return out


PRESIGN_SECONDS = 6 * 3600


def _presigner(client: Any, bucket: str) -> Callable[[str], str]:
    """A function key → presigned GET URL: SigV4 query signing in the standard library.

    botocore's ``generate_presigned_url`` costs about a millisecond of CPU per call: over a third
    of the time of a 4,000-file stage. This signs the same way (AWS Signature Version 4, query
    parameters, ``UNSIGNED-PAYLOAD``; every S3 region and S3-compatible store takes it), with the
    credentials, region, endpoint and addressing style botocore resolved: the URL's shape is taken
    from one URL botocore presigns. Without credentials (anonymous access) botocore signs each key.
    """
    import datetime
    import hmac
    from urllib.parse import quote, urlsplit

    def botocore_url(key: str) -> str:
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
        )
        return url

    template = botocore_url("k")
    creds = client._request_signer._credentials  # the ones botocore signs with (env, Secret, pod identity)
    frozen = creds.get_frozen_credentials() if creds is not None else None
    parts = urlsplit(template)
    if frozen is None or not frozen.access_key or not parts.path.endswith("/k"):
        return botocore_url
    prefix = parts.path[:-1]  # "/bucket/" (path style) or "/" (virtual host)
    region = client.meta.region_name
    now = datetime.datetime.now(datetime.UTC)
    day, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{day}/{region}/s3/aws4_request"
    key_bytes = ("AWS4" + frozen.secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key_bytes = hmac.digest(key_bytes, part.encode(), "sha256")
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{frozen.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(PRESIGN_SECONDS),
        "X-Amz-SignedHeaders": "host",
    }
    if frozen.token:
        params["X-Amz-Security-Token"] = frozen.token
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    head = f"{parts.scheme}://{parts.netloc}"

    def sign(key: str) -> str:
        path = prefix + quote(key, safe="/~")
        canonical = f"GET\n{path}\n{query}\nhost:{parts.netloc}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(key_bytes, to_sign.encode(), "sha256").hexdigest()
        return f"{head}{path}?{query}&X-Amz-Signature={signature}"

    return sign


def _head_url(url: str) -> SourceFile:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    name = PurePosixPath(parts.path).name
    if not name:
        raise UsageError(f"source {url!r} names no file", "end the URL with the file's name")
    try:
        conn = cls(parts.netloc, timeout=30)
        # A one-byte ranged GET, not HEAD: a presigned URL is signed for GET only.
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path or "/"
        conn.request("GET", target, headers={"Range": "bytes=0-0"})
        resp = conn.getresponse()
        if resp.status == 200:
            conn.close()  # the server ignored Range: do not read the whole body here
        else:
            resp.read()
            conn.close()
    except (OSError, http.client.HTTPException) as err:
        raise StageError(f"cannot reach {parts.netloc}: {err}", "check the URL and the network") from None
    if resp.status not in (200, 206):
        raise StageError(f"GET {url.split('?')[0]}: HTTP {resp.status}", "check the URL")
    total = (resp.getheader("Content-Range") or "").rpartition("/")[2]
    size = total if resp.status == 206 and total.isdigit() else resp.getheader("Content-Length")
    if size is None:
        raise StageError(f"{url.split('?')[0]} sends no Content-Length", "stage needs the size to verify the copy")
    return SourceFile(name, int(size), (resp.getheader("ETag") or "").strip('"').removeprefix("W/"), url)


class _Journal:
    """The manifest plus an append-only journal of files verified since it was written."""

    def __init__(self, dest: Path, source: str) -> None:
        self.dir = dest / STATE_DIR
        self.source = source
        self.manifest_path = self.dir / STAGE_MANIFEST
        self.journal_path = self.dir / "journal"
        self.files: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(self.manifest_path.read_text())
            if data.get("source") == source:
                self.files = dict(data.get("files", {}))
        with contextlib.suppress(FileNotFoundError):
            for line in self.journal_path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("source") == source:
                        self.files[entry["path"]] = {"size": entry["size"], "etag": entry["etag"]}

    def open(self) -> None:
        self._pending: list[SourceFile] = []
        self._flushed = time.monotonic()
        (self.dir / "partial").mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def up_to_date(self, f: SourceFile, dest: Path) -> bool:
        known = self.files.get(f.path)
        if not known or known.get("size") != f.size or known.get("etag") != f.etag:
            return False
        try:
            return (dest / f.path).stat().st_size == f.size
        except OSError:
            return False

    def record(self, f: SourceFile) -> None:
        """A file verified and in place: journalled with the next batch, once its data is durable."""
        with self._lock:
            self._pending.append(f)
            due = time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """syncfs the volume, then append every pending file to the journal (one write)."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._flushed = time.monotonic()
        if not batch:
            return
        _syncfs(self._fd)
        lines = [{"source": self.source, "path": f.path, "size": f.size, "etag": f.etag} for f in batch]
        with self._lock:
            os.write(self._fd, "".join(json.dumps(line) + "\n" for line in lines).encode())
            self.files.update({f.path: {"size": f.size, "etag": f.etag} for f in batch})

    def commit(self) -> None:
        """Fold the journal into manifest.json (atomically), then drop the journal."""
        self.flush()
        os.close(self._fd)
        tmp = self.dir / "manifest.json.tmp"
        tmp.write_text(json.dumps({"source": self.source, "files": self.files}, indent=1, sort_keys=True))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.manifest_path)
        self.journal_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Journal what is complete (a failed run keeps it for the next), then close."""
        with contextlib.suppress(OSError, AttributeError):
            self.flush()
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)


def _syncfs(fd: int) -> None:
    """syncfs(2): write back the file system that holds ``fd`` (Python has no wrapper)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def stage(
    source: str,
    dest: Path,
    *,
    concurrency: int = CONCURRENCY,
    part_size: int = PART_SIZE,
    progress: Progress | None = None,
    shard: tuple[int, int] | None = None,
) -> StageStats:
    """Copy ``source`` into directory ``dest``; see the module docstring for the guarantees.

    ``shard=(rank, world)`` stages files ``rank, rank + world, …`` of the listing sorted by path:
    every file lands in exactly one of ``world`` directories.
    """
    files = list_source(source)
    if shard is not None:
        rank, world = shard
        files = sorted(files, key=lambda f: f.path)[rank::world]
    try:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / STATE_DIR / "partial").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StageError(
            f"cannot write into {dest}: {err.strerror}",
            "is the volume mounted writable, and owned by the pod's fsGroup (spec.securityContext.fsGroup)?",
        ) from None
    journal = _Journal(dest, source)
    stats = StageStats(files=len(files), bytes_total=sum(f.size for f in files))
    todo = [f for f in files if not journal.up_to_date(f, dest)]
    stats.skipped = len(files) - len(todo)
    need = sum(f.size for f in todo)
    st = os.statvfs(dest)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise StageError(
            f"not enough space in {dest}: {len(todo)} file(s) need {need} bytes, {free} free",
            "grow the volume (`berth resize`) or free space; nothing was changed",
        )
    journal.open()
    partial = journal.dir / "partial"
    for leftover in partial.rglob("*"):  # a killed run's incomplete files: restart them
        if leftover.is_file():
            leftover.unlink()
    raw = RawHTTP()
    lock = threading.Lock()
    local = threading.local()

    def moved(n: int, done_file: bool = False) -> None:
        with lock:
            stats.bytes_done += n
            stats.fetched += int(done_file)
        if progress is not None:
            progress(stats)

    def buffer(size: int) -> memoryview:
        # Up to 4 MiB per thread, no bigger than the parts it has seen: small files need small buffers.
        want = min(max(size, 64 << 10), 4 << 20)
        if len(getattr(local, "buf", b"")) < want:
            local.buf = memoryview(bytearray(want))
        buf: memoryview = local.buf
        return buf

    def fetch(f: SourceFile, parts: ThreadPoolExecutor) -> None:
        tmp = partial / f.path
        tmp.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            if f.size:
                os.posix_fallocate(fd, 0, f.size)  # reserve now: a full volume fails here, not midway

            def part(offset: int, size: int) -> None:
                raw.get_range_to_file(f.url, fd, offset, size, buffer(size), if_match=f.etag or None)
                moved(size)

            ranges = [(o, min(part_size, f.size - o)) for o in range(0, f.size, part_size)]
            if len(ranges) <= 1:
                for o, s in ranges:
                    part(o, s)
            else:
                for fut in [parts.submit(part, o, s) for o, s in ranges]:
                    fut.result()
        finally:
            os.close(fd)
        got = tmp.stat().st_size
        if got != f.size:
            raise StageError(f"{f.path}: got {got} bytes, the source lists {f.size}", "run `berth stage` again")
        if _MD5_ETAG.match(f.etag) and _md5(tmp) != f.etag:
            raise StageError(f"{f.path}: MD5 does not match the source's ETag {f.etag}", "run `berth stage` again")
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        journal.record(f)
        moved(0, done_file=True)

    try:
        with (
            ThreadPoolExecutor(concurrency, thread_name_prefix="berth-stage") as pool,
            ThreadPoolExecutor(min(concurrency, PART_CONCURRENCY), thread_name_prefix="berth-stage-part") as parts,
        ):
            futures = [pool.submit(fetch, f, parts) for f in todo]
            try:
                for fut in futures:
                    fut.result()
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
    except SourceChanged as err:
        raise StageError(
            f"the source changed while staging: {err.message}",
            "run `berth stage` again once the source is stable (complete files are kept)",
        ) from None
    except TransferError as err:
        raise StageError(f"download failed: {err.message}", "check the endpoint; run again to resume") from None
    except OSError as err:
        import errno

        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StageError(
                f"{dest} is full: {err.strerror}",
                "grow the volume (`berth resize`); files already there are intact, run again to resume",
            ) from None
        raise StageError(f"cannot write into {dest}: {err}") from None
    finally:
        journal.close()
        for leftover in partial.rglob("*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
    journal.open()
    journal.commit()
    stats.seconds = max(time.monotonic() - stats.started, 1e-9)
    return stats


def parse_shard(text: str) -> tuple[int, int]:
    """``RANK/WORLD`` (``2/8``) → (2, 8); a UsageError that says the form otherwise."""
    rank, _, world = text.partition("/")
    if not (rank.isdigit() and world.isdigit()) or int(world) < 1 or int(rank) >= int(world):
        raise UsageError(f"--shard {text!r} is not RANK/WORLD with 0 <= RANK < WORLD", "e.g. --shard 0/4")
    return int(rank), int(world)


def _registry(source: str, stats: StageStats) -> Any:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    figures = (
        ("berth_stage_files", "Files of the source (of this shard).", stats.files),
        ("berth_stage_files_fetched", "Files fetched by the last run.", stats.fetched),
        ("berth_stage_files_skipped", "Files already up to date, not fetched.", stats.skipped),
        ("berth_stage_bytes", "Bytes of the source (of this shard).", stats.bytes_total),
        ("berth_stage_bytes_fetched", "Bytes fetched by the last run.", stats.bytes_done),
        ("berth_stage_duration_seconds", "How long the last run took.", stats.elapsed()),
        ("berth_stage_throughput_bytes_per_second", "Bytes fetched per second.", stats.bytes_done / stats.elapsed()),
        ("berth_stage_last_success_timestamp_seconds", "Unix time the last run finished.", time.time()),
    )
    for name, doc, value in figures:
        Gauge(name, doc, ["source"], registry=registry).labels(source).set(value)
    return registry


def export_metrics(source: str, stats: StageStats, *, path: Path | None, pushgateway: str | None) -> None:
    """The run's figures in Prometheus' text format, into ``path`` and/or a Pushgateway.

    The file is replaced atomically (a node exporter's textfile collector reads it, or a person);
    the Pushgateway (job ``berth-stage``) is Prometheus' way for batch work: a Job's pod is gone
    before a scrape would find it.
    """
    from prometheus_client import generate_latest, push_to_gateway

    registry = _registry(source, stats)
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(generate_latest(registry))
        os.replace(tmp, path)
    if pushgateway:
        try:
            push_to_gateway(pushgateway, job="berth-stage", registry=registry, grouping_key={"source": source})
        except OSError as err:
            raise StageError(
                f"staged, but the metrics could not be pushed to {pushgateway}: {err}", "check --pushgateway"
            ) from None
