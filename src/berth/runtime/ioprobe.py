"""``berth probe PATH``: what a mounted volume really does, measured from inside the pod.

The guide's troubleshooting answer to slow training I/O is "run fio in the pod"; the runtime
image has no fio, so this is the same four measurements in the standard library, shaped like
fio's jobs so the numbers compare (``benchmarks/ioprobe_vs_fio.py`` runs both on one directory):

- sequential write and read: 1 MiB blocks, ``O_DIRECT``, one at a time (fio ``--rw=write|read
  --bs=1M --direct=1 --ioengine=psync``), over a file laid out with ``fallocate`` like fio does;
- 4 KiB random read and write: ``O_DIRECT`` at ``queue_depth`` I/Os in flight, one thread per
  slot (the system call releases the GIL; fio ``--rw=randread|randwrite --bs=4k --direct=1
  --ioengine=psync --numjobs=N --thread``), for a fixed time;
- fsync latency: 4 KiB buffered write + ``fsync``, repeated (fio ``--fsync=1``), p50 and p99.

A filesystem that refuses ``O_DIRECT`` (tmpfs before Linux 6.6, some FUSE mounts) is measured
buffered and says so: those figures are the page cache's, not the disk's. Nothing is left
behind: the probe's files are removed even when it fails, and a volume without room for them
fails before writing (or at the first ``ENOSPC``) with one message.
"""

from __future__ import annotations

import errno
import mmap
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import BerthError

MIB = 1 << 20
BLOCK = 4096
SEQ_BLOCK = MIB
RANDOM_BATCH = 32  # random I/Os between two looks at the stop flag
RANDOM_TABLE = 1 << 18  # offsets drawn ahead (1 GiB of distinct 4 KiB blocks at most)
FSYNC_FILE_BLOCKS = 256  # the fsync file wraps around after 1 MiB: its size stays small


class ProbeError(BerthError):
    """The probe cannot run on this path (missing, read-only, full)."""


@dataclass
class ProbeResult:
    """One run's figures (MiB/s, IOPS, ms) and how they were taken."""

    path: str
    direct: bool
    file_size: int
    queue_depth: int
    seq_write_mib_s: float = 0.0
    seq_read_mib_s: float = 0.0
    rand_read_iops: float = 0.0
    rand_write_iops: float = 0.0
    fsync_p50_ms: float = 0.0
    fsync_p99_ms: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for ``-o json``."""
        return {
            "path": self.path,
            "direct": self.direct,
            "fileSize": self.file_size,
            "queueDepth": self.queue_depth,
            "seqWriteMiBps": round(self.seq_write_mib_s, 1),
            "seqReadMiBps": round(self.seq_read_mib_s, 1),
            "randReadIops": round(self.rand_read_iops),
            "randWriteIops": round(self.rand_write_iops),
            "fsyncP50Ms": round(self.fsync_p50_ms, 3),
            "fsyncP99Ms": round(self.fsync_p99_ms, 3),
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }


def probe(
    path: Path,
    *,
    size: int = 256 * MIB,
    seconds: float = 3.0,
    queue_depth: int = 16,
    fsyncs: int = 200,
    progress: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Measure the filesystem holding ``path`` (a directory); ``size`` bytes of probe file."""
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    _check_room(path, max(SEQ_BLOCK, size // SEQ_BLOCK * SEQ_BLOCK) + FSYNC_FILE_BLOCKS * BLOCK)
    with ProbeFile(path, size) as f:
        result = ProbeResult(str(path), direct=f.direct, file_size=f.size, queue_depth=queue_depth)
        if not f.direct:
            result.notes.append(f"{path}: the filesystem refuses O_DIRECT: buffered figures (page cache, not disk)")
        say(f"sequential write, {f.size // MIB} MiB in 1 MiB blocks")
        result.seq_write_mib_s = f.seq_write()
        say("sequential read")
        result.seq_read_mib_s = f.seq_read()
        say(f"4 KiB random read, queue depth {queue_depth}, {seconds:g}s")
        result.rand_read_iops = f.random(queue_depth, seconds, write=False)
        say(f"4 KiB random write, queue depth {queue_depth}, {seconds:g}s")
        result.rand_write_iops = f.random(queue_depth, seconds, write=True)
    say(f"fsync latency, {fsyncs} x (4 KiB write + fsync)")
    result.fsync_p50_ms, result.fsync_p99_ms = fsync_latency(path, fsyncs)
    result.seconds = time.perf_counter() - started
    return result


class ProbeFile:
    """The probe's data file in ``path``, laid out; one method per measurement, removed on exit.

    ``probe`` runs them in order; ``benchmarks/ioprobe_vs_fio.py`` pairs each with fio's job.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = max(SEQ_BLOCK, size // SEQ_BLOCK * SEQ_BLOCK)
        self.file = path / f".berth-probe-{os.getpid()}-{threading.get_ident()}"
        self.fd = -1
        self.direct = True

    def __enter__(self) -> ProbeFile:
        _check_room(self.path, self.size)
        try:
            self.fd, self.direct = _open(self.file, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            _layout(self.fd, self.size, self.path)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.file.unlink(missing_ok=True)

    def seq_write(self) -> float:
        """MiB/s writing the whole file in 1 MiB blocks, fsync included."""
        return _sequential(self.fd, self.size, write=True, path=self.path)

    def seq_read(self) -> float:
        """MiB/s reading the whole file in 1 MiB blocks."""
        return _sequential(self.fd, self.size, write=False, path=self.path)

    def random(self, depth: int, seconds: float, *, write: bool) -> float:
        """4 KiB IOPS at ``depth`` in flight for ``seconds``."""
        return _random(self.fd, self.size, depth, seconds, write=write, path=self.path)


def _check_room(path: Path, need: int) -> None:
    if not path.is_dir():
        raise ProbeError(f"{path} is not a directory", "pass the mount path of the volume to measure")
    if not os.access(path, os.W_OK):
        raise ProbeError(f"{path} is not writable by this user", "probe a volume the pod may write to")
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise ProbeError(_full(path, need, free), "free space on the volume, or probe with a smaller --size")


def _full(path: Path, need: int, free: int | None = None) -> str:
    have = f", {free / MIB:.1f} MiB free" if free is not None else ""
    return f"not enough space in {path} for the probe: it needs {need / MIB:.1f} MiB{have} (the volume is full)"


def _no_space(err: OSError, path: Path, need: int) -> ProbeError | None:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return ProbeError(_full(path, need), "free space on the volume, or probe with a smaller --size")
    return None


def _open(file: Path, flags: int) -> tuple[int, bool]:
    """An O_DIRECT descriptor, or a buffered one where the filesystem refuses O_DIRECT."""
    try:
        return os.open(file, flags | os.O_DIRECT | os.O_CLOEXEC, 0o600), True
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
    return os.open(file, flags | os.O_CLOEXEC, 0o600), False


def _layout(fd: int, size: int, path: Path) -> None:
    """Reserve the file's blocks first, like fio (a full volume fails here, before any timing)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        full = _no_space(err, path, size)
        if full:
            raise full from None
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise


def _aligned(nbytes: int, fill: bool) -> mmap.mmap:
    """A page-aligned buffer O_DIRECT can DMA from; random bytes so nothing compresses or dedupes."""
    buf = mmap.mmap(-1, nbytes)
    if fill:
        buf.write(os.urandom(nbytes))
    return buf


def _sequential(fd: int, size: int, *, write: bool, path: Path) -> float:
    buf = _aligned(SEQ_BLOCK, fill=write)
    try:
        t0 = time.perf_counter()
        for offset in range(0, size, SEQ_BLOCK):
            try:
                done = os.pwrite(fd, buf, offset) if write else os.preadv(fd, [buf], offset)
            except OSError as err:
                full = _no_space(err, path, size)
                if full:
                    raise full from None
                raise
            if done != SEQ_BLOCK:
                raise ProbeError(f"short {'write' if write else 'read'} at {offset} in {path}: {done} bytes")
        if write:
            os.fsync(fd)
        return size / MIB / max(time.perf_counter() - t0, 1e-9)
    finally:
        buf.close()


def _random(fd: int, size: int, depth: int, seconds: float, *, write: bool, path: Path) -> float:
    """IOPS with ``depth`` threads, each one synchronous 4 KiB I/O at a time at random aligned offsets."""
    blocks = size // BLOCK
    # Offsets drawn before the clock starts (over the whole file, like fio's), each thread walking
    # its own part, and the stop flag read once per batch: the Python work between two system calls
    # is what a loaded CPU slows down, so it is kept to a loop step.
    rng = random.Random(blocks)
    table = [rng.randrange(blocks) * BLOCK for _ in range(min(blocks, RANDOM_TABLE))]
    counts = [0] * depth
    errors: list[BaseException] = []
    start = threading.Barrier(depth + 1)
    stop = threading.Event()

    def worker(slot: int) -> None:
        buf = _aligned(BLOCK, fill=write)
        bufs, n, at = [buf], 0, slot * len(table) // depth
        try:
            start.wait()
            while not stop.is_set():
                batch = table[at : at + RANDOM_BATCH] or table[:RANDOM_BATCH]
                at = (at + len(batch)) % len(table)
                if write:
                    for offset in batch:
                        os.pwrite(fd, buf, offset)
                else:
                    for offset in batch:
                        os.preadv(fd, bufs, offset)
                n += len(batch)
        except BaseException as err:  # reported by the caller, with the path
            errors.append(err)
            stop.set()
        finally:
            counts[slot] = n
            buf.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(depth)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        err = errors[0]
        full = _no_space(err, path, size) if isinstance(err, OSError) else None
        raise (full or err) from None
    return sum(counts) / max(elapsed, 1e-9)


def fsync_latency(path: Path, count: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of ``fsync`` after a 4 KiB buffered write, over ``count`` rounds."""
    file = path / f".berth-probe-{os.getpid()}-{threading.get_ident()}.fsync"
    try:
        return _fsync_rounds(file, count, path)
    finally:
        file.unlink(missing_ok=True)


def _fsync_rounds(file: Path, count: int, path: Path) -> tuple[float, float]:
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    block = os.urandom(BLOCK)
    took: list[float] = []
    try:
        for i in range(count):
            try:
                os.pwrite(fd, block, (i % FSYNC_FILE_BLOCKS) * BLOCK)
                t0 = time.perf_counter()
                os.fsync(fd)
                took.append(time.perf_counter() - t0)
            except OSError as err:
                full = _no_space(err, path, FSYNC_FILE_BLOCKS * BLOCK)
                if full:
                    raise full from None
                raise
    finally:
        os.close(fd)
    took.sort()
    return took[len(took) // 2] * 1000, took[min(len(took) - 1, int(len(took) * 0.99))] * 1000
