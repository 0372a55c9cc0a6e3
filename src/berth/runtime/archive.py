"""The cold tier: shards copied to an S3-compatible bucket, the manifest object last.

A shard is in the archive only once ``.../manifest.json`` exists, and that object is
written after every data object completed; deletion removes the manifest first. So a
reader listing manifests never sees a partial shard, whatever was interrupted when.
Credentials and endpoint come from boto3's standard environment (the rendered Secret).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError, UsageError
from berth.runtime.manifest import MANIFEST_NAME, FileEntry, Manifest
from berth.runtime.store import rank_dirname, step_dirname
from berth.runtime.transfer import RawHTTP, TransferError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Progress = Callable[[int], None]
"""Called with the bytes just moved (uploaded, downloaded or verified), for progress bars."""
PART_SIZE = 16 << 20
CONCURRENCY = 8  # parallel parts; downloads from SeaweedFS on 2 cores gain 2x over 4
_MANIFEST_KEY = re.compile(r"(?:^|/)step-(\d+)/rank-(\d+)/" + re.escape(MANIFEST_NAME) + "$")


class ArchiveError(BerthError):
    """The object store failed or is unreachable; the upload is retried later."""


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if not match:
        raise UsageError(f"archive URL {url!r} is not s3://bucket/prefix", hint="e.g. s3://my-bucket/runs/llama")
    return match.group(1), match.group(2).strip("/")


def make_client(concurrency: int = CONCURRENCY) -> S3Client:
    """An S3 client from the standard environment (AWS_* variables), tuned for big parallel transfers."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=concurrency * 2,
        s3={"addressing_style": "path" if endpoint else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


_local = threading.local()


def _scratch() -> memoryview:
    """This thread's reusable 4 MiB transfer buffer (fresh memory is slow to fault in)."""
    if not hasattr(_local, "buf"):
        _local.buf = memoryview(bytearray(4 << 20))
    buf: memoryview = _local.buf
    return buf


def _fingerprint(entry: FileEntry) -> str:
    """A short digest of a file's chunk checksums, stored as object metadata to make resume safe."""
    return f"{entry.size}-{zlib.crc32(repr(entry.crc32).encode()):08x}"


@dataclass
class _Board:
    archive: Archive
    sub: str

    def put(self, name: str, data: bytes) -> None:
        self.archive.client.put_object(Bucket=self.archive.bucket, Key=self.archive.key(self.sub, name), Body=data)

    def get(self, name: str) -> bytes | None:
        try:
            obj = self.archive.client.get_object(Bucket=self.archive.bucket, Key=self.archive.key(self.sub, name))
        except self.archive.client.exceptions.NoSuchKey:
            return None
        return obj["Body"].read()


class Archive:
    """Shards of a run under ``s3://bucket/prefix``, laid out like the local directory."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = CONCURRENCY,
        part_size: int = PART_SIZE,
        client: S3Client | None = None,
    ) -> None:
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self.concurrency, self.part_size = concurrency, part_size
        self._client = client
        self._raw = RawHTTP()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = make_client(self.concurrency)
        return self._client

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def shard_key(self, step: int, rank: int, name: str) -> str:
        return self.key(step_dirname(step), rank_dirname(rank), name)

    def board(self, sub: str) -> _Board:
        return _Board(self, sub)

    def _fail(self, what: str, err: Exception) -> ArchiveError:
        return ArchiveError(
            f"{self.url}: {what} failed: {err}",
            hint="check AWS_ENDPOINT_URL and the credentials Secret; uploads are retried automatically",
        )

    def shards(self) -> dict[int, set[int]]:
        """step -> ranks whose manifest object exists (i.e. complete shards)."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: dict[int, set[int]] = {}
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    match = _MANIFEST_KEY.search(obj["Key"])
                    if match and obj["Key"].count("/") == prefix.count("/") + 2:
                        found.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
        except (BotoCoreError, ClientError) as err:
            raise self._fail("listing", err) from err
        return found

    def steps(self, rank: int) -> list[int]:
        """Steps whose shard of ``rank`` is complete in the archive, oldest first."""
        return sorted(s for s, ranks in self.shards().items() if rank in ranks)

    def manifest(self, step: int, rank: int) -> Manifest:
        """The shard's manifest object; ArchiveError when the store fails, like every other call."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.shard_key(step, rank, MANIFEST_NAME)
        try:
            raw = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as err:
            raise self._fail(f"reading the manifest of step {step} rank {rank}", err) from err
        return Manifest.from_bytes(raw, f"s3://{self.bucket}/{key}")

    # -- upload ---------------------------------------------------------------------------------

    def upload_shard(self, shard: Path, manifest: Manifest, progress: Progress | None = None) -> int:
        """Copy a committed shard, data objects in parallel parts, then the manifest object.

        Objects already present with the same size and checksum fingerprint are skipped, so a
        retry after a crash or an outage resumes where the last attempt stopped. Returns the
        bytes sent.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        sent = 0
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="berth-up") as pool:
                jobs = [
                    (entry, self.shard_key(manifest.step, manifest.rank, entry.name))
                    for entry in manifest.files
                    if not self._present(self.shard_key(manifest.step, manifest.rank, entry.name), entry, progress)
                ]
                uploads = [self._upload_file(pool, shard / entry.name, key, entry, progress) for entry, key in jobs]
                for finish in uploads:
                    sent += finish()
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.shard_key(manifest.step, manifest.rank, MANIFEST_NAME),
                Body=manifest.to_bytes(),
            )
        except (BotoCoreError, ClientError, TransferError) as err:
            raise self._fail(f"upload of step {manifest.step} rank {manifest.rank}", err) from err
        return sent

    def _present(self, key: str, entry: FileEntry, progress: Progress | None) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        done = head["ContentLength"] == entry.size and head.get("Metadata", {}).get("berth") == _fingerprint(entry)
        if done and progress is not None:
            progress(entry.size)
        return done

    def _upload_file(
        self, pool: ThreadPoolExecutor, path: Path, key: str, entry: FileEntry, progress: Progress | None
    ) -> Callable[[], int]:
        """Start the upload of one file on ``pool``; the returned callable waits and completes it."""
        meta = {"berth": _fingerprint(entry)}

        def read(offset: int, size: int) -> bytes:
            with open(path, "rb", buffering=0) as f:
                data = os.pread(f.fileno(), size, offset)
            if len(data) != size:
                raise ArchiveError(f"{path} changed size during upload")
            return data

        if entry.size <= self.part_size:

            def put() -> None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=read(0, entry.size), Metadata=meta)
                if progress is not None:
                    progress(entry.size)

            single = pool.submit(put)

            def finish_single() -> int:
                single.result()
                return entry.size

            return finish_single

        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=meta)["UploadId"]

        def part(number: int, offset: int, size: int) -> dict[str, Any]:
            url = self.client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=3600,
            )
            with open(path, "rb", buffering=0) as f:
                etag = self._raw.put_file_range(url, f.fileno(), offset, size)
            if progress is not None:
                progress(size)
            return {"PartNumber": number, "ETag": etag}

        step = max(self.part_size, -(-entry.size // 9000))  # S3 allows at most 10,000 parts
        parts: list[Future[dict[str, Any]]] = [
            pool.submit(part, i + 1, offset, min(step, entry.size - offset))
            for i, offset in enumerate(range(0, entry.size, step))
        ]

        def finish_multipart() -> int:
            try:
                done = [p.result() for p in parts]
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},  # type: ignore[typeddict-item]
                )
            except BaseException:
                for p in parts:
                    p.cancel()
                self._abort(key, upload_id)
                raise
            return entry.size

        return finish_multipart

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: the store may be the reason we failed; lifecycle rules catch the rest."""
        from botocore.exceptions import BotoCoreError, ClientError

        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # -- download -------------------------------------------------------------------------------

    def download_shard(
        self,
        step: int,
        rank: int,
        dest: Path,
        progress: Progress | None = None,
        *,
        manifest: Manifest | None = None,
    ) -> Manifest:
        """Fetch a complete shard into the empty directory ``dest`` (ranged GETs in parallel), fsynced.

        Returns the manifest without writing it: committing ``dest`` (the store) writes it last.
        A caller that already read the manifest (to size the staging directory) passes it.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if manifest is None:
            manifest = self.manifest(step, rank)
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="berth-down") as pool:
                for entry in manifest.files:
                    self._download_file(
                        pool, self.shard_key(step, rank, entry.name), dest / entry.name, entry, progress
                    )
        except (BotoCoreError, ClientError, TransferError) as err:
            raise self._fail(f"download of step {step} rank {rank}", err) from err
        return manifest

    def _download_file(
        self, pool: ThreadPoolExecutor, key: str, path: Path, entry: FileEntry, progress: Progress | None
    ) -> None:
        ranges = [(offset, min(self.part_size, entry.size - offset)) for offset in range(0, entry.size, self.part_size)]
        self._download_ranges(pool, key, path, entry, ranges, progress, truncate=True)

    def download_chunks(
        self, step: int, rank: int, path: Path, entry: FileEntry, chunks: list[int], progress: Progress | None = None
    ) -> None:
        """Fetch only ``chunks`` (indexes of the manifest's chunks) of one file into ``path``, fsynced.

        The bytes already in ``path`` stay: a resumed seed (runtime/seed.py) re-fetches only the
        chunks whose checksum does not match.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        ranges = [entry.chunk_span(i) for i in chunks]
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="berth-down") as pool:
                self._download_ranges(pool, self.shard_key(step, rank, entry.name), path, entry, ranges, progress)
        except (BotoCoreError, ClientError, TransferError) as err:
            raise self._fail(f"download of step {step} rank {rank}", err) from err

    def _download_ranges(
        self,
        pool: ThreadPoolExecutor,
        key: str,
        path: Path,
        entry: FileEntry,
        ranges: list[tuple[int, int]],
        progress: Progress | None,
        *,
        truncate: bool = False,
    ) -> None:
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0), 0o644)
        try:
            os.ftruncate(fd, entry.size)

            def part(offset: int, size: int) -> None:
                self._raw.get_range_to_file(url, fd, offset, size, _scratch())
                if progress is not None:
                    progress(size)

            futures = [pool.submit(part, offset, size) for offset, size in ranges]
            for f in futures:
                f.result()
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- retention ------------------------------------------------------------------------------

    def delete_shard(self, step: int, rank: int) -> None:
        """Remove a shard, manifest first so it is never visible half-deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.shard_key(step, rank, MANIFEST_NAME))
            base = self.shard_key(step, rank, "")
            listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=base)
            for obj in listing.get("Contents", []):
                self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
        except (BotoCoreError, ClientError) as err:
            raise self._fail(f"deleting step {step} rank {rank}", err) from err
