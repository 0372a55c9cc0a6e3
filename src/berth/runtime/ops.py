"""Whole-directory operations behind ``berth ckpt``: list, show, verify, prune, archive, restore.

Unlike CheckpointManager (one rank), these look at every rank found in a directory, as an
operator does on a shared volume or a copy of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import BerthError, UsageError
from berth.runtime.archive import Archive, Progress
from berth.runtime.manifest import CorruptCheckpoint, Manifest
from berth.runtime.shard import fetch_shard, verify_shard
from berth.runtime.store import (
    ARCHIVED_MARKER,
    LocalStore,
    read_complete,
    read_manifest,
    retained,
    scan_steps,
)


@dataclass
class StepInfo:
    """One step as found in a directory."""

    step: int
    ranks: list[int]
    world_size: int | None
    nbytes: int
    created: float | None
    archived: bool
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems and self.world_size is not None and len(self.ranks) == self.world_size

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "ranks": self.ranks,
            "worldSize": self.world_size,
            "bytes": self.nbytes,
            "created": self.created,
            "complete": self.complete,
            "archived": self.archived,
            "problems": self.problems,
        }


def _existing(root: Path) -> Path:
    if not root.is_dir():
        raise UsageError(f"{root}: no such checkpoint directory")
    return root


def list_steps(root: Path) -> list[StepInfo]:
    """Every step with at least one committed shard, oldest first (no data is read)."""
    infos = []
    for step, shards in sorted(scan_steps(_existing(root)).items()):
        info = StepInfo(step, sorted(shards), None, 0, None, True)
        for shard in shards.values():
            info.archived &= (shard / ARCHIVED_MARKER).exists()
            try:
                manifest = read_complete(shard)
            except CorruptCheckpoint as err:
                info.problems.append(err.message)
                continue
            info.world_size = manifest.world_size
            info.nbytes += manifest.nbytes
            info.created = max(info.created or 0.0, manifest.created)
        infos.append(info)
    return infos


def show(root: Path, step: int) -> dict[str, Any]:
    """Manifests of every rank of ``step``: files, sizes, chunks, tensor index."""
    shards = scan_steps(_existing(root)).get(step)
    if not shards:
        raise UsageError(f"{root}: no committed step {step}", hint="`berth ckpt list DIR` shows the steps")
    out: dict[str, Any] = {"step": step, "ranks": {}}
    for rank, shard in sorted(shards.items()):
        m = read_manifest(shard)
        out["ranks"][str(rank)] = {
            "path": str(shard),
            "worldSize": m.world_size,
            "created": m.created,
            "bytes": m.nbytes,
            "files": [{"name": f.name, "size": f.size, "chunks": len(f.crc32)} for f in m.files],
            "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in m.tensors],
        }
    return out


@dataclass
class Problem:
    """A shard that fails verification: which step, rank, file and chunk."""

    step: int
    rank: int
    path: str | None
    chunk: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "rank": self.rank, "path": self.path, "chunk": self.chunk, "error": self.message}


def total_bytes(root: Path, step: int | None = None) -> int:
    """Bytes a full verify of ``root`` (or one step) reads, for progress bars."""
    return sum(i.nbytes for i in list_steps(root) if step is None or i.step == step)


def verify(root: Path, step: int | None = None, progress: Progress | None = None) -> list[Problem]:
    """Read every byte of every shard (or of one step) and check it against its manifest."""
    problems = []
    found = scan_steps(_existing(root))
    if step is not None and step not in found:
        raise UsageError(f"{root}: no committed step {step}")
    for s, shards in sorted(found.items()):
        if step is not None and s != step:
            continue
        for rank, shard in sorted(shards.items()):
            try:
                verify_shard(shard, read_manifest(shard), progress)
            except CorruptCheckpoint as err:
                problems.append(Problem(s, rank, err.path, err.chunk, err.message))
    return problems


@contextmanager
def _all_rank_locks(root: Path, ranks: set[int]) -> Iterator[dict[int, LocalStore]]:
    """Every rank's lock, so no running manager writes while we delete (fails if one is running)."""
    with ExitStack() as stack:
        stores = {}
        for rank in sorted(ranks):
            store = LocalStore(root, rank)
            store.open()
            stack.callback(store.close)
            stores[rank] = store
        yield stores


def plan_prune(root: Path, keep_last: int | None, keep_every: int | None) -> list[int]:
    """Steps a retention policy would delete (whole steps, every rank)."""
    steps = [i.step for i in list_steps(root)]
    keep = retained(steps, keep_last, keep_every)
    return [s for s in steps if s not in keep]


def prune(root: Path, steps: list[int], *, keep_unarchived: bool | None = None) -> list[int]:
    """Delete ``steps`` (all ranks), skipping steps not yet fully archived when ``keep_unarchived``.

    By default (None) unarchived steps are kept when the directory uses an archive (some shard
    carries the ARCHIVED marker): never delete the only copy of a step.
    """
    found = scan_steps(_existing(root))
    if keep_unarchived is None:
        keep_unarchived = any((p / ARCHIVED_MARKER).exists() for shards in found.values() for p in shards.values())
    ranks = {r for s in steps for r in found.get(s, {})}
    removed = []
    with _all_rank_locks(root, ranks) as stores:
        for s in steps:
            shards = found.get(s, {})
            if keep_unarchived and not all((p / ARCHIVED_MARKER).exists() for p in shards.values()):
                continue
            for rank in shards:
                stores[rank].remove(s)
            removed.append(s)
    return removed


def archive_dir(
    root: Path, url: str, *, step: int | None = None, progress: Progress | None = None
) -> list[tuple[int, int]]:
    """Upload committed shards the archive lacks; returns the (step, rank) pairs sent.

    A shard the archive already holds with the same files (a manager died between its upload
    and the ARCHIVED marker) is only marked; one it holds with other files (the step was saved
    again) is uploaded again.
    """
    archive = Archive(url)
    present = archive.shards()
    sent = []
    for s, shards in sorted(scan_steps(_existing(root)).items()):
        if step is not None and s != step:
            continue
        for rank, shard in sorted(shards.items()):
            manifest = read_manifest(shard)
            if rank in present.get(s, set()) and archive.manifest(s, rank).files == manifest.files:
                if progress is not None:
                    progress(manifest.nbytes)
            else:
                archive.upload_shard(shard, manifest, progress)
                sent.append((s, rank))
            LocalStore(root, rank).mark_archived(s)
    return sent


@dataclass
class ArchivedStep:
    """A step complete in the archive, with every rank's manifest (read once, used to size and fetch)."""

    archive: Archive
    step: int
    manifests: dict[int, Manifest]

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in self.manifests.values())


def newest_complete_in_archive(url: str, step: int | None = None) -> ArchivedStep:
    """The newest archived step (or ``step``) with every rank's manifest present."""
    archive = Archive(url)
    shards = archive.shards()
    for s in sorted(shards, reverse=True):
        if step is not None and s != step:
            continue
        first, *others = sorted(shards[s])
        manifest = archive.manifest(s, first)
        if len(shards[s]) == manifest.world_size:
            return ArchivedStep(archive, s, {first: manifest, **{r: archive.manifest(s, r) for r in others}})
    what = f"step {step}" if step is not None else "any complete step"
    raise BerthError(f"{url}: no archive copy of {what}", hint="`berth ckpt archive` uploads one")


def restore_dir(root: Path, found: ArchivedStep, progress: Progress | None = None) -> list[int]:
    """Download, verify and commit every rank's shard of ``found`` into ``root`` (created); returns the ranks."""
    with _all_rank_locks(root, set(found.manifests)) as stores:
        for rank, manifest in sorted(found.manifests.items()):
            fetch_shard(found.archive, stores[rank], manifest, progress)
    return sorted(found.manifests)
