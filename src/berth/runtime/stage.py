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
- before anything is written, and again before each further page of the listing (the first page's
  files download while the next pages are listed), the free space of DEST is compared with what must
  be fetched: a full volume is one error line, and what DEST held before is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from berth.contract import STAGE_MANIFEST, STAGE_STATE_DIR
from berth.errors import BerthError, UsageError
from berth.runtime.transfer import RawHTTP, SourceChanged, TransferError

STATE_DIR = STAGE_STATE_DIR
PART_SIZE = 16 << 20
CONCURRENCY = 16
SMALL_CONCURRENCY = 64  # files in flight when they average under SMALL_FILE: a GET each, latency-bound
SMALL_FILE = 1 << 20
# Ranged GETs in flight across the big files. 16 looked better inside one process (4 x 256 MiB 2.38-2.63 s
# against 2.69-2.78 s, load 8-13), but as whole `berth stage` runs, interleaved (2026-12-01, load 4-8),
# 8 won: 4 x 64 MiB medians 0.55-0.65 s against 0.59-0.72 s, 4 x 256 MiB 2.02 s against 2.38 s.
PART_CONCURRENCY = 8
# Received bytes go through a buffer per thread this small, so that the copy into the page cache
# reads it from the CPU's cache: with 4 MiB buffers that copy took most of a 1 GiB stage's CPU.
BUFFER = 256 << 10
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
    parts = key.split("/")
    if any(part in ("..", ".", "") for part in parts) or parts[0] == STATE_DIR:  # "" also: absolute, "a//b"
        raise StageError(f"source key {key!r} is not a safe relative path", "rename the object")
    return key


def source_pages(source: str) -> Iterator[list[SourceFile]]:
    """The files of ``source`` with their sizes and ETags, a listing page (up to 1,000 objects) at a time.

    Listing errors (StageError/UsageError, one line) are raised when the first page is taken.
    """
    if source.startswith("s3://"):
        return _list_s3(source)
    if source.startswith(("https://", "http://")):
        return iter([[_head_url(source)]])
    raise UsageError(f"source {source!r} is neither s3://bucket/prefix nor an https:// URL")


class _Lister:
    """The listing's pages fetched ahead in a thread: the first page's files are downloading while the
    next pages are listed (10,000 objects: 10 requests, 0.4-0.8 s here, no longer before the first GET)."""

    def __init__(self, pages: Iterator[list[SourceFile]]) -> None:
        import queue

        self._queue: queue.SimpleQueue[list[SourceFile] | BaseException | None] = queue.SimpleQueue()
        self._done = False
        threading.Thread(target=self._run, args=(pages,), name="berth-stage-list", daemon=True).start()

    def _run(self, pages: Iterator[list[SourceFile]]) -> None:
        try:
            for page in pages:
                self._queue.put(page)
            self._queue.put(None)
        except BaseException as err:  # raised where the page is taken
            self._queue.put(err)

    def next(self) -> list[SourceFile] | None:
        """The next page (waiting for it), None after the last; a listing error is raised here."""
        if self._done:
            return None
        page = self._queue.get()
        if isinstance(page, BaseException):
            self._done = True
            raise page
        self._done = page is None
        return page


_LIST_HINTS = {
    "NoSuchBucket": "bucket {bucket!r} does not exist at this endpoint",
    "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID / the Secret's keys",
    "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY / the Secret's keys",
    "AccessDenied": "the credentials may not list this bucket",
}
PRESIGN_SECONDS = 6 * 3600
LIST_PAGE = 1000  # objects per listing request (S3's most); each page's files start downloading as it arrives


def _list_s3(source: str) -> Iterator[list[SourceFile]]:
    from berth.runtime.archive import parse_url

    bucket, prefix = parse_url(source)
    base = f"{prefix}/" if prefix else ""
    signer = _env_signer(bucket)
    pages = _list_signed(source, signer, base) if signer is not None else _list_boto3(source, bucket, base)
    found = 0
    for page in pages:
        out: list[SourceFile] = []
        for key, size, etag, url in page:
            rel = _safe_relpath(key[len(base) :])
            if rel is not None:
                out.append(SourceFile(rel, size, etag, url))
        found += len(out)
        yield out
    if not found:
        raise StageError(f"{source} holds no objects", "check the prefix (it is a folder: s3://bucket/prefix)")


def _list_failed(source: str, bucket: str, code: str) -> StageError:
    hint = _LIST_HINTS.get(code, "check the endpoint, bucket and credentials").format(bucket=bucket)
    return StageError(f"cannot list {source}: {code}", hint)


def _list_boto3(source: str, bucket: str, base: str) -> Iterator[list[tuple[str, int, str, str]]]:
    """The listing through boto3: its whole credential chain (a Secret's keys, the pod's identity)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from berth.runtime.archive import make_client

    client = make_client()
    try:
        sign = _client_signer(client, bucket)
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=base, PaginationConfig={"PageSize": LIST_PAGE}):
            yield [
                (
                    obj["Key"],
                    int(obj["Size"]),
                    obj["ETag"].strip('"'),
                    sign.url(obj["Key"]) if sign else _botocore_url(client, bucket, obj["Key"]),
                )
                for obj in page.get("Contents", [])
            ]
    except ClientError as err:
        raise _list_failed(source, bucket, err.response.get("Error", {}).get("Code", "") or str(err)) from None
    except BotoCoreError as err:
        raise StageError(f"cannot list {source}: {err}", "is the endpoint (AWS_ENDPOINT_URL) reachable?") from None


def _list_signed(source: str, sign: _SigV4, base: str) -> Iterator[list[tuple[str, int, str, str]]]:
    """ListObjectsV2 over plain HTTP with a presigned URL: without boto3's 0.5 s client and its parsing."""
    import xml.etree.ElementTree as ET
    from urllib.parse import urlsplit

    from berth.runtime.http1 import Connection

    token = ""
    parts = urlsplit(sign.head)
    conn = Connection(parts.scheme, parts.netloc, timeout=60)
    try:
        while True:
            params = {"list-type": "2", "max-keys": str(LIST_PAGE), "prefix": base}
            params.update({"continuation-token": token} if token else {})
            url = urlsplit(sign.url("", params))
            resp = conn.request("GET", f"{url.path}?{url.query}")
            root = ET.fromstring(resp.read())
            ns = root.tag[: root.tag.find("}") + 1]  # "{http://s3.amazonaws.com/doc/2006-03-01/}", or none
            if resp.status != 200:
                raise _list_failed(source, sign.bucket, root.findtext(f"{ns}Code") or f"HTTP {resp.status}")
            key_, size_, etag_ = f"{ns}Key", f"{ns}Size", f"{ns}ETag"  # findtext, in C: 0.1 s less per 10,000
            out: list[tuple[str, int, str, str]] = []
            for node in root.iterfind(f"{ns}Contents"):
                key = node.findtext(key_) or ""
                out.append(
                    (key, int(node.findtext(size_) or 0), (node.findtext(etag_) or "").strip('"'), sign.url(key))
                )
            yield out
            truncated = root.findtext(f"{ns}IsTruncated") == "true"
            token = (root.findtext(f"{ns}NextContinuationToken") or "") if truncated else ""
            if not token:
                return
    except (OSError, ET.ParseError) as err:  # http1.ProtocolError too
        raise StageError(f"cannot list {source}: {err}", "is the endpoint (AWS_ENDPOINT_URL) reachable?") from None
    finally:
        conn.close()


class _SigV4:
    """AWS Signature Version 4 in query parameters (presigned URLs), ``UNSIGNED-PAYLOAD``, for S3.

    botocore's ``generate_presigned_url`` costs about a millisecond of CPU per call (over a third
    of a 4,000-file stage); this is a few HMACs. Every S3 region and S3-compatible store takes it.
    """

    def __init__(self, head: str, prefix: str, bucket: str, region: str, key_id: str, secret: str, token: str):
        import datetime
        import hmac

        self.head, self.prefix, self.bucket = head, prefix, bucket
        now = datetime.datetime.now(datetime.UTC)
        day, self.stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
        self.scope = f"{day}/{region}/s3/aws4_request"
        key = ("AWS4" + secret).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        self.key = key
        self.params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{key_id}/{self.scope}",
            "X-Amz-Date": self.stamp,
            "X-Amz-Expires": str(PRESIGN_SECONDS),
            "X-Amz-SignedHeaders": "host",
            **({"X-Amz-Security-Token": token} if token else {}),
        }
        self.host = head.split("://", 1)[1]
        self.query = self._query(self.params)  # an object's GET has no other parameter: quoted once

    @staticmethod
    def _query(params: dict[str, str]) -> str:
        from urllib.parse import quote

        return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))

    def url(self, key: str, params: dict[str, str] | None = None) -> str:
        """The presigned GET URL of object ``key`` (``""``: the bucket, with ``params``)."""
        import hmac
        from urllib.parse import quote

        path = self.prefix + quote(key, safe="/~")
        query = self._query({**self.params, **params}) if params else self.query
        canonical = f"GET\n{path}\n{query}\nhost:{self.host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"AWS4-HMAC-SHA256\n{self.stamp}\n{self.scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        return f"{self.head}{path}?{query}&X-Amz-Signature={hmac.new(self.key, to_sign.encode(), 'sha256').hexdigest()}"


def _env_signer(bucket: str) -> _SigV4 | None:
    """A signer for an endpoint in the environment (path-style), else None (use boto3).

    Its keys are static ones or the pod's AWS identity (IRSA's web identity, EKS Pod Identity),
    resolved as the SDK would by :mod:`berth.runtime.cloudcreds`; a failed exchange raises there.
    """
    from berth.runtime import cloudcreds

    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint or not endpoint.startswith(("http://", "https://")):
        return None
    creds = cloudcreds.resolve(env)
    if creds is None:
        return None
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    head = endpoint.rstrip("/")
    return _SigV4(head, f"/{bucket}/", bucket, region, creds.key_id, creds.secret, creds.token)


def _botocore_url(client: Any, bucket: str, key: str) -> str:
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
    )
    return url


def _client_signer(client: Any, bucket: str) -> _SigV4 | None:
    """A signer with the credentials, region, endpoint and addressing style botocore resolved (None: anonymous).

    The URL's shape comes from one URL botocore presigns.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(_botocore_url(client, bucket, "k"))
    creds = client._request_signer._credentials  # the ones botocore signs with (env, a Secret, the pod's identity)
    frozen = creds.get_frozen_credentials() if creds is not None else None
    if frozen is None or not frozen.access_key or not parts.path.endswith("/k"):
        return None
    head = f"{parts.scheme}://{parts.netloc}"
    return _SigV4(
        head, parts.path[:-1], bucket, client.meta.region_name, frozen.access_key, frozen.secret_key, frozen.token or ""
    )


def _head_url(url: str) -> SourceFile:
    from urllib.parse import urlsplit

    from berth.runtime.http1 import Connection

    parts = urlsplit(url)
    name = PurePosixPath(parts.path).name
    if not name:
        raise UsageError(f"source {url!r} names no file", "end the URL with the file's name")
    conn = Connection(parts.scheme, parts.netloc, timeout=30)
    try:
        # A one-byte ranged GET, not HEAD: a presigned URL is signed for GET only.
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path or "/"
        resp = conn.request("GET", target, {"Range": "bytes=0-0"})
        if resp.status != 200:  # 200: the server ignored Range, do not read the whole body here
            resp.read()
    except OSError as err:  # http1.ProtocolError too
        raise StageError(f"cannot reach {parts.netloc}: {err}", "check the URL and the network") from None
    finally:
        conn.close()
    if resp.status not in (200, 206):
        raise StageError(f"GET {url.split('?')[0]}: HTTP {resp.status}", "check the URL")
    total = (resp.header("Content-Range") or "").rpartition("/")[2]
    size = total if resp.status == 206 and total.isdigit() else resp.header("Content-Length")
    if size is None:
        raise StageError(f"{url.split('?')[0]} sends no Content-Length", "stage needs the size to verify the copy")
    return SourceFile(name, int(size), (resp.header("ETag") or "").strip('"').removeprefix("W/"), url)


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
        # One line, sorted keys (the dataset's wait script greps for its '"source": "…"'): json's C encoder;
        # with indent=1 the pure-Python one took 0.1-0.18 s for 10,000 files at the end of every run.
        tmp.write_text(json.dumps({"source": self.source, "files": self.files}, sort_keys=True))
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


def _md5(fd: int) -> str:
    """The MD5 of a file fetched in parallel parts (read back: the parts arrived out of order)."""
    h = hashlib.md5(usedforsecurity=False)
    buf = memoryview(bytearray(BUFFER))
    offset = 0
    while n := os.preadv(fd, [buf], offset):
        h.update(buf[:n])
        offset += n
    return h.hexdigest()


def _each_in_threads(items: Iterable[SourceFile], threads: int, work: Callable[[SourceFile], None]) -> None:
    """``work(item)`` for every item, on ``threads`` threads that each take the next item when done with one.

    Not a ThreadPoolExecutor: a future per file cost ~0.1 s of a 10,000-file stage before the first GET
    went out. ``items`` may be a generator (taken under a lock); what it raises counts as a failure. The
    first failure stops the threads taking more (those in progress finish) and is raised here, as is ^C
    in the waiting thread once the others have stopped.
    """
    pending = iter(items)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def worker() -> None:
        while not failed:
            try:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                work(item)
            except BaseException as err:  # re-raised in the calling thread
                failed.append(err)

    pool = [threading.Thread(target=worker, name=f"berth-stage-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    try:
        for thread in pool:
            thread.join()
    except BaseException as err:
        failed.append(err)
        for thread in pool:
            thread.join()
    if failed:
        raise failed[0]


def stage(
    source: str,
    dest: Path,
    *,
    concurrency: int | None = None,
    part_size: int = PART_SIZE,
    progress: Progress | None = None,
    shard: tuple[int, int] | None = None,
) -> StageStats:
    """Copy ``source`` into directory ``dest``; see the module docstring for the guarantees.

    ``shard=(rank, world)`` stages files ``rank, rank + world, …`` of the listing sorted by path:
    every file lands in exactly one of ``world`` directories. ``concurrency``: files in flight
    (default: SMALL_CONCURRENCY for small files, CONCURRENCY otherwise).
    """
    pages = source_pages(source)
    if shard is not None:  # sorted, so that every rank splits the same sequence
        rank, world = shard
        pages = iter([sorted((f for page in pages for f in page), key=lambda f: f.path)[rank::world]])
    lister = _Lister(pages)
    files: list[SourceFile] = []
    while not files and (page := lister.next()) is not None:  # listing errors: raised before DEST is touched
        files = page
    try:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / STATE_DIR / "partial").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StageError(
            f"cannot write into {dest}: {err.strerror}",
            "is the volume mounted writable, and owned by the pod's fsGroup (spec.securityContext.fsGroup)?",
        ) from None
    journal = _Journal(dest, source)
    partial = journal.dir / "partial"
    stats = StageStats()
    lock = threading.Lock()
    admitted = [0]  # bytes of the files handed to the threads so far

    def admit(page: list[SourceFile]) -> list[SourceFile]:
        """The page's files not up to date, once the volume has room for them (and their parent directories)."""
        todo = [f for f in page if not journal.up_to_date(f, dest)]
        need = sum(f.size for f in todo)
        with lock:
            stats.files += len(page)
            stats.bytes_total += sum(f.size for f in page)
            stats.skipped += len(page) - len(todo)
            writing = admitted[0] - stats.bytes_done  # handed out, not written yet
        st = os.statvfs(dest)
        free = st.f_bavail * st.f_frsize
        if need + writing > free:
            raise StageError(
                f"not enough space in {dest}: {len(todo)} file(s) need {need} bytes, {free} free",
                "grow the volume (`berth resize`) or free space; "
                + ("files already staged are intact, run again to resume" if admitted[0] else "nothing was changed"),
            )
        admitted[0] += need
        for parent in {f.path.rpartition("/")[0] for f in todo} - {""}:  # once, not a mkdir per file
            (partial / parent).mkdir(parents=True, exist_ok=True)
            (dest / parent).mkdir(parents=True, exist_ok=True)
        return todo

    todo = admit(files)  # the first page decides the concurrency and fails a full volume before any write
    if concurrency is None:
        concurrency = SMALL_CONCURRENCY if todo and admitted[0] < SMALL_FILE * len(todo) else CONCURRENCY
    journal.open()
    for leftover in partial.rglob("*"):  # a killed run's incomplete files: restart them
        if leftover.is_file():
            leftover.unlink()

    def listed() -> Iterator[SourceFile]:
        yield from todo
        while (page := lister.next()) is not None:
            yield from admit(page)

    raw = RawHTTP()
    local = threading.local()

    def moved(n: int, done_file: bool = False) -> None:
        with lock:
            stats.bytes_done += n
            stats.fetched += int(done_file)
        if progress is not None:
            progress(stats)

    def buffer() -> memoryview:
        if not hasattr(local, "buf"):
            local.buf = memoryview(bytearray(BUFFER))
        buf: memoryview = local.buf
        return buf

    def fetch(f: SourceFile, parts: ThreadPoolExecutor) -> None:
        tmp = partial / f.path
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        single_md5 = _MD5_ETAG.match(f.etag) is not None
        try:
            if not f.size:
                got: str | None = hashlib.md5(b"", usedforsecurity=False).hexdigest()
            elif f.size <= part_size:  # one GET, hashed as it arrives; a full volume fails its write
                got = raw.get_range_to_file(
                    f.url,
                    fd,
                    0,
                    f.size,
                    buffer(),
                    if_match=f.etag or None,
                    md5=single_md5,
                    # A large file's writeback starts as each part is written (sync_file_range, not
                    # waiting): the disk works during the transfer and the syncfs before the journal
                    # has little left (4 x 64 MiB: 0.55 s against 0.71 s); small files skip the syscall.
                    writeback=f.size > SMALL_FILE,
                )
            else:
                os.posix_fallocate(fd, 0, f.size)  # reserve now: a full volume fails here, not midway

                def part(offset: int, size: int) -> None:
                    raw.get_range_to_file(f.url, fd, offset, size, buffer(), if_match=f.etag or None)
                    moved(size)

                futures = [parts.submit(part, o, min(part_size, f.size - o)) for o in range(0, f.size, part_size)]
                try:
                    for fut in futures:
                        fut.result()
                except BaseException:
                    # The file's other parts stop before it is closed: one still running would write to
                    # a closed descriptor, or to whatever file took its number meanwhile.
                    for fut in futures:
                        fut.cancel()
                    wait(futures)
                    raise
                got = _md5(fd) if single_md5 else None  # a big single-part upload: its MD5 needs every part
        finally:
            os.close(fd)
        if single_md5 and got != f.etag:
            raise StageError(f"{f.path}: MD5 does not match the source's ETag {f.etag}", "run `berth stage` again")
        os.replace(tmp, dest / f.path)
        journal.record(f)
        moved(f.size if f.size <= part_size else 0, done_file=True)

    try:
        with ThreadPoolExecutor(min(concurrency, PART_CONCURRENCY), thread_name_prefix="berth-stage-part") as parts:
            _each_in_threads(listed(), concurrency, lambda f: fetch(f, parts))
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


def _figures(stats: StageStats) -> tuple[tuple[str, str, float], ...]:
    """The run's gauges: (name, help, value), labelled with the source when exported."""
    return (
        ("berth_stage_files", "Files of the source (of this shard).", stats.files),
        ("berth_stage_files_fetched", "Files fetched by the last run.", stats.fetched),
        ("berth_stage_files_skipped", "Files already up to date, not fetched.", stats.skipped),
        ("berth_stage_bytes", "Bytes of the source (of this shard).", stats.bytes_total),
        ("berth_stage_bytes_fetched", "Bytes fetched by the last run.", stats.bytes_done),
        ("berth_stage_duration_seconds", "How long the last run took.", stats.elapsed()),
        ("berth_stage_throughput_bytes_per_second", "Bytes fetched per second.", stats.bytes_done / stats.elapsed()),
        ("berth_stage_last_success_timestamp_seconds", "Unix time the last run finished.", time.time()),
    )


def _exposition(source: str, figures: tuple[tuple[str, str, float], ...]) -> str:
    """Prometheus' text format of ``figures``, written here: importing prometheus_client for a file of
    eight gauges cost 85-100 ms of every run (a tenth of a 4 x 64 MiB stage)."""
    label = source.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "".join(
        f'# HELP {name} {doc}\n# TYPE {name} gauge\n{name}{{source="{label}"}} {float(value)!r}\n'
        for name, doc, value in figures
    )


def export_metrics(source: str, stats: StageStats, *, path: Path | None, pushgateway: str | None) -> None:
    """The run's figures in Prometheus' text format, into ``path`` and/or a Pushgateway.

    The file is replaced atomically (a node exporter's textfile collector reads it, or a person);
    the Pushgateway (job ``berth-stage``) is Prometheus' way for batch work: a Job's pod is gone
    before a scrape would find it. prometheus_client is imported only for the push.
    """
    figures = _figures(stats)
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(_exposition(source, figures))
        os.replace(tmp, path)
    if pushgateway:
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

        registry = CollectorRegistry()
        for name, doc, value in figures:
            Gauge(name, doc, ["source"], registry=registry).labels(source).set(value)
        try:
            push_to_gateway(pushgateway, job="berth-stage", registry=registry, grouping_key={"source": source})
        except OSError as err:
            raise StageError(
                f"staged, but the metrics could not be pushed to {pushgateway}: {err}", "check --pushgateway"
            ) from None
