"""Seed one rank's checkpoint volume from the archive before its trainer starts (``berth seed``).

``berth restore NAME --from-archive s3://…`` recreates a cluster lost with its volumes and gives
every pod an init container running this, so each rank finds the archive's newest step on its
fresh claim. The step is the one every rank would agree on at restore: the newest step whose
shard of *every* rank is complete in the archive (``agree.intersect`` over the ranks' offers,
the rule ``CheckpointManager.restore`` applies), so all init containers pick the same one.

- **Verified**: every chunk is checked against the archived manifest's CRC32s, and the shard
  is committed (manifest written last, renamed into ``step-N/rank-R``) only when all match.
- **Resumable**: the download goes to ``DIR/.seed-step-N-rank-R`` (a name the store's start-up
  cleanup leaves alone); after a kill or a store outage the next run keeps every chunk whose
  checksum matches and fetches only the rest.
- **Idempotent**: a rank whose volume already holds that step, or a newer one, downloads
  nothing and changes nothing, so a restarted pod never overwrites what its trainer saved since.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from berth.errors import BerthError
from berth.runtime.agree import intersect
from berth.runtime.archive import Archive, ArchiveError, Progress
from berth.runtime.manifest import CorruptCheckpoint, FileEntry, Manifest
from berth.runtime.shard import verify_shard
from berth.runtime.store import LocalStore, out_of_space, rank_dirname, read_complete, step_dirname

SEED_PREFIX = ".seed-"
READ_PIECE = 1 << 20

# Exit codes of `berth seed` and of `berth restore --from-archive`'s archive check (docs/backup.md).
EXIT_UNREACHABLE = 1  # endpoint, credentials, bucket: the store cannot be read
EXIT_NO_STEP = 3  # refused: the archive holds no step every rank has


class ArchiveUnreadable(BerthError):
    """The archive cannot be listed: endpoint unreachable, credentials refused, bucket missing."""

    exit_code = EXIT_UNREACHABLE


class NoCompleteStep(BerthError):
    """No step of the archive has a complete shard for every rank (or it was saved by another world size)."""

    exit_code = EXIT_NO_STEP


def agreed_step(shards: dict[int, set[int]], world_size: int) -> int | None:
    """The newest step whose shard of every rank ``0..world_size-1`` is complete; None if none."""
    offers = [[step for step, ranks in shards.items() if rank in ranks] for rank in range(world_size)]
    common = intersect(offers)
    return common[0] if common else None


def _unreadable(url: str, err: ArchiveError) -> ArchiveUnreadable:
    """One line naming what is wrong with the store, from botocore's error underneath."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    cause = err.__cause__
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    if isinstance(cause, NoCredentialsError):
        return ArchiveUnreadable(
            f"{url}: no credentials to read the archive",
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile) here; the pods use spec.archive.secretName",
        )
    if isinstance(cause, ClientError):
        code = str(cause.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return ArchiveUnreadable(
                f"{url}: bucket {bucket} does not exist at {endpoint}", "check the URL and AWS_ENDPOINT_URL"
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
            return ArchiveUnreadable(
                f"{url}: the object store at {endpoint} refused the credentials ({code})",
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (here) and spec.archive.secretName (in the pods)",
            )
        return ArchiveUnreadable(f"{url}: the object store answered {code}: {cause}", "check the URL and endpoint")
    if isinstance(cause, EndpointConnectionError) or cause is not None:
        return ArchiveUnreadable(
            f"{url}: cannot reach the object store at {endpoint}: {cause}",
            "check AWS_ENDPOINT_URL (spec.archive.endpoint in the pods) and that the store is up",
        )
    return ArchiveUnreadable(err.message, err.hint)


@dataclass
class ArchivedRun:
    """What the archive holds for a world of ``world_size`` ranks: the agreed step and its manifests."""

    url: str
    step: int
    world_size: int
    manifests: dict[int, Manifest]

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in self.manifests.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": self.url,
            "step": self.step,
            "worldSize": self.world_size,
            "ranks": [{"rank": r, "bytes": m.nbytes, "files": len(m.files)} for r, m in sorted(self.manifests.items())],
        }


def newest_agreed(url: str, world_size: int, archive: Archive | None = None) -> ArchivedRun:
    """The step every rank has in the archive, with each rank's manifest; one clear error otherwise."""
    archive = archive or Archive(url)
    try:
        shards = archive.shards()
        step = agreed_step(shards, world_size)
        if step is None:
            have = ", ".join(f"step {s}: ranks {sorted(r)}" for s, r in sorted(shards.items())[-3:]) or "nothing"
            raise NoCompleteStep(
                f"{url}: no step has a complete shard for every one of {world_size} ranks (found {have})",
                "restore needs a step every rank archived; `berth ckpt list`/`berth ckpt archive` on a copy",
            )
        manifests = {rank: archive.manifest(step, rank) for rank in range(world_size)}
    except ArchiveError as err:
        raise _unreadable(url, err) from err
    worlds = {m.world_size for m in manifests.values()}
    if worlds != {world_size}:
        raise NoCompleteStep(
            f"{url}: step {step} was saved by {sorted(worlds)} ranks, the cluster has {world_size} replicas",
            "restore with the replica count the run was archived with",
        )
    return ArchivedRun(url, step, world_size, manifests)


@dataclass
class SeedReport:
    """What one rank's seed did; JSON in the init container's termination message."""

    rank: int
    step: int
    action: str  # seeded | present | newer-local
    local_step: int | None
    chunks_fetched: int = 0
    chunks_kept: int = 0
    bytes_fetched: int = 0
    bytes_kept: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        return {
            "rank": raw["rank"],
            "step": raw["step"],
            "action": raw["action"],
            "localStep": raw["local_step"],
            "chunksFetched": raw["chunks_fetched"],
            "chunksKept": raw["chunks_kept"],
            "bytesFetched": raw["bytes_fetched"],
            "bytesKept": raw["bytes_kept"],
            "seconds": round(raw["seconds"], 3),
        }


def _good_chunks(path: Path, manifest_entry: FileEntry) -> set[int]:
    """Indexes of the chunks of ``path`` whose CRC32 matches the manifest (none if the size differs)."""
    from zlib_ng.zlib_ng import crc32

    try:
        if os.stat(path).st_size != manifest_entry.size:
            return set()
    except FileNotFoundError:
        return set()
    good = set()
    with open(path, "rb", buffering=0) as f:
        for index, expected in enumerate(manifest_entry.crc32):
            offset, length = manifest_entry.chunk_span(index)
            end, crc = offset + length, 0
            while offset < end:
                piece = os.pread(f.fileno(), min(READ_PIECE, end - offset), offset)
                if not piece:
                    break
                crc, offset = crc32(piece, crc), offset + len(piece)
            if offset == end and crc == expected:
                good.add(index)
    return good


def _local_newest(store: LocalStore) -> int | None:
    """This rank's newest committed step that has a complete manifest and every file at its size."""
    for step in reversed(store.steps()):
        try:
            read_complete(store.shard_dir(step))
        except CorruptCheckpoint:
            continue
        return step
    return None


def seed_rank(
    root: Path,
    url: str,
    rank: int,
    world_size: int,
    *,
    archive: Archive | None = None,
    progress: Progress | None = None,
) -> SeedReport:
    """Make rank ``rank``'s checkpoint directory hold the archive's agreed step (or a newer one)."""
    started = time.monotonic()
    archive = archive or Archive(url)
    run = newest_agreed(url, world_size, archive)
    manifest = run.manifests[rank]
    store = LocalStore(root, rank)
    store.open()  # the rank's lock: no trainer (or second seed) writes here meanwhile
    try:
        local = _local_newest(store)
        if local is not None and local >= run.step:
            action = "present" if local == run.step else "newer-local"
            return SeedReport(rank, run.step, action, local, seconds=time.monotonic() - started)
        report = SeedReport(rank, run.step, "seeded", local)
        staging = root / f"{SEED_PREFIX}{step_dirname(run.step)}-{rank_dirname(rank)}"
        for entry in os.scandir(root):  # a partial seed of another step is of no use any more
            mine = entry.name.startswith(SEED_PREFIX) and entry.name.endswith(rank_dirname(rank))
            if mine and entry.path != str(staging):
                shutil.rmtree(entry.path, ignore_errors=True)
        staging.mkdir(exist_ok=True)
        try:
            _fill(archive, staging, manifest, report, progress)
            verify_shard(staging, manifest)  # the one verification of a shard before it is committed
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                shutil.rmtree(staging, ignore_errors=True)  # give the space back; nothing else was touched
                raise out_of_space(root, manifest.nbytes) from err
            raise
        except ArchiveError as err:
            raise _unreadable(url, err) from err
        store.commit(staging, manifest)
        store.mark_archived(run.step)
        report.seconds = time.monotonic() - started
        return report
    finally:
        store.close()


def _fill(archive: Archive, staging: Path, manifest: Manifest, report: SeedReport, progress: Progress | None) -> None:
    """Download every chunk of the shard that is not already in ``staging`` with the right checksum."""
    todo: list[tuple[FileEntry, list[int], int]] = []  # file, chunks to fetch, their bytes
    for entry in manifest.files:
        good = _good_chunks(staging / entry.name, entry)
        bad = [i for i in range(len(entry.crc32)) if i not in good]
        sizes = {i: entry.chunk_span(i)[1] for i in range(len(entry.crc32))}
        report.chunks_kept += len(good)
        report.bytes_kept += sum(sizes[i] for i in good)
        if bad or not (staging / entry.name).exists():  # an empty file has no chunk to fetch
            todo.append((entry, bad, sum(sizes[i] for i in bad)))
        if progress is not None:
            progress(sum(sizes[i] for i in good))
    missing_bytes = sum(nbytes for _, _, nbytes in todo)
    if missing_bytes and shutil.disk_usage(staging).free < missing_bytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    for entry, bad, nbytes in todo:
        archive.download_chunks(manifest.step, manifest.rank, staging / entry.name, entry, bad, progress)
        report.chunks_fetched += len(bad)
        report.bytes_fetched += nbytes
