"""One rank's view of the checkpoint directory on its hot volume: atomic commit, lock, retention.

Layout (several ranks may share one directory, each touches only its own shards)::

    DIR/step-000000000100/rank-00000/{tensors.safetensors, meta.json, manifest.json[, ARCHIVED]}
    DIR/.tmp-step-000000000100-rank-00000-<random>/   a save in progress (removed at start-up)
    DIR/.trash-rank-00000-<random>/                   a shard being deleted (removed at start-up)
    DIR/.lock-rank-00000                              flock held by the one manager of this rank

A shard exists only once ``rename(tmp, step-N/rank-R)`` has happened, and the tmp directory
is renamed only after its files and manifest were fsynced; so a crash at any moment leaves
either the whole shard or nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError, UsageError
from berth.runtime.manifest import MANIFEST_NAME, CorruptCheckpoint, Manifest

ARCHIVED_MARKER = "ARCHIVED"
_STEP_RE = re.compile(r"^step-(\d+)$")
_RANK_RE = re.compile(r"^rank-(\d+)$")


def step_dirname(step: int) -> str:
    return f"step-{step:012d}"


def rank_dirname(rank: int) -> str:
    return f"rank-{rank:05d}"


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and fsync it (not the directory: the commit rename does that)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view.nbytes:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def out_of_space(path: Path, needed: int) -> BerthError:
    """The one message for a full volume, used by the pre-flight check and on ENOSPC."""
    return BerthError(
        f"not enough space in {path}: the checkpoint needs {needed:,} bytes, {free_bytes(path):,} are free",
        hint="lower keep_last, grow the checkpoint volume, or enable the archive tier and prune",
    )


def scan_steps(root: Path) -> dict[int, dict[int, Path]]:
    """step -> rank -> committed shard directory, for every rank found under ``root``."""
    found: dict[int, dict[int, Path]] = {}
    try:
        step_entries = list(os.scandir(root))
    except FileNotFoundError:
        return found
    for entry in step_entries:
        match = _STEP_RE.match(entry.name)
        if not match or not entry.is_dir():
            continue
        try:
            subs = list(os.scandir(entry.path))
        except (FileNotFoundError, NotADirectoryError):  # another rank removed its last shard meanwhile
            continue
        for sub in subs:
            rmatch = _RANK_RE.match(sub.name)
            if rmatch and os.path.exists(os.path.join(sub.path, MANIFEST_NAME)):
                found.setdefault(int(match.group(1)), {})[int(rmatch.group(1))] = Path(sub.path)
    return found


def read_manifest(shard: Path) -> Manifest:
    path = shard / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CorruptCheckpoint(f"{path}: {err.strerror}", path=str(path)) from err
    return Manifest.from_bytes(raw, str(path))


def read_complete(shard: Path) -> Manifest:
    """The manifest of a shard whose listed files all exist with their sizes; else CorruptCheckpoint.

    The cheap check (no data read) behind the steps ``restore()`` offers and ``ckpt list`` counts.
    """
    manifest = read_manifest(shard)
    for entry in manifest.files:
        path = shard / entry.name
        try:
            size = path.stat().st_size
        except FileNotFoundError as err:
            raise CorruptCheckpoint(f"{path}: missing", path=str(path)) from err
        if size != entry.size:
            raise CorruptCheckpoint(f"{path}: size {size}, manifest says {entry.size}", path=str(path))
    return manifest


@dataclass
class LocalStore:
    """The shards of one rank under ``root``; call :meth:`open` before writing."""

    root: Path
    rank: int

    def __post_init__(self) -> None:
        self._lock_fd: int | None = None

    @property
    def _tag(self) -> str:
        return rank_dirname(self.rank)

    def open(self) -> None:
        """Create the directory, take this rank's lock and drop what earlier crashes left behind."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"{self.root}: not a directory", hint="give the checkpoint directory's path") from None
        lock_path = self.root / f".lock-{self._tag}"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BerthError(
                f"{self.root}: another checkpoint manager (pid {holder}) writes rank {self.rank} here",
                hint="give each rank its own rank= or each job its own directory",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        self.remove_stale()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def remove_stale(self) -> list[Path]:
        """Remove this rank's temporaries and trash; safe because we hold the rank's lock."""
        removed = []
        for entry in os.scandir(self.root):
            if entry.name.startswith((".tmp-", ".trash-")) and f"-{self._tag}-" in entry.name:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
            elif _STEP_RE.match(entry.name):
                with contextlib.suppress(OSError):  # empty step directory left by a crash mid-delete
                    os.rmdir(entry.path)
        return removed

    def shard_dir(self, step: int) -> Path:
        return self.root / step_dirname(step) / self._tag

    def steps(self) -> list[int]:
        """Steps with a committed shard of this rank, oldest first."""
        return sorted(s for s, ranks in scan_steps(self.root).items() if self.rank in ranks)

    def check_space(self, needed: int) -> None:
        """Fail fast, before any byte is written, when the volume cannot hold the shard."""
        if free_bytes(self.root) < needed:
            raise out_of_space(self.root, needed)

    @contextmanager
    def staging(self, step: int, needed: int) -> Iterator[Path]:
        """A fresh temporary directory on the same volume; removed unless committed.

        A full volume (ENOSPC) becomes the same clear error as the pre-flight check.
        """
        tmp = self.root / f".tmp-{step_dirname(step)}-{self._tag}-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            yield tmp
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise out_of_space(self.root, needed) from err
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def commit(self, tmp: Path, manifest: Manifest) -> Path:
        """Write the manifest into ``tmp``, fsync, and rename it into place as the step's shard."""
        write_durable(tmp / MANIFEST_NAME, manifest.to_bytes())
        fsync_dir(tmp)
        step_dir = self.root / step_dirname(manifest.step)
        target = step_dir / self._tag
        if target.exists():  # the same step saved again: the newer content wins
            self._trash(target)
        for attempt in range(3):
            if not step_dir.exists():
                step_dir.mkdir(exist_ok=True)
                fsync_dir(self.root)
            try:
                os.rename(tmp, target)
                break
            except FileNotFoundError:  # another rank's start-up removed the still-empty step dir
                if attempt == 2:
                    raise
        fsync_dir(step_dir)
        return target

    def _trash(self, shard: Path) -> None:
        trash = self.root / f".trash-{self._tag}-{uuid.uuid4().hex[:12]}"
        os.rename(shard, trash)
        fsync_dir(shard.parent)
        shutil.rmtree(trash, ignore_errors=True)

    def remove(self, step: int) -> None:
        """Delete this rank's shard of ``step`` atomically (rename away first, then delete)."""
        shard = self.shard_dir(step)
        if shard.exists():
            self._trash(shard)
        with contextlib.suppress(OSError):
            shard.parent.rmdir()  # only succeeds once the last rank's shard is gone

    def is_archived(self, step: int) -> bool:
        return (self.shard_dir(step) / ARCHIVED_MARKER).exists()

    def mark_archived(self, step: int) -> None:
        shard = self.shard_dir(step)
        if shard.exists():
            write_durable(shard / ARCHIVED_MARKER, b"")
            fsync_dir(shard)


def retained(steps: list[int], keep_last: int | None, keep_every: int | None) -> set[int]:
    """Steps a retention policy keeps: the newest ``keep_last`` and every multiple of ``keep_every``."""
    keep = set(steps[-keep_last:]) if keep_last else set(steps) if keep_last is None else set()
    if keep_every:
        keep |= {s for s in steps if s % keep_every == 0}
    return keep
