"""A streaming writer and a verifying reader of the safetensors file format.

Why our own: the reference library builds the whole file in memory before writing it and
computes no checksums. Checkpoints of several GiB must go to disk at the disk's speed
without a second copy, and each fixed-size chunk of the file gets a CRC32 that restore
checks while it reads. zlib-ng computes the same CRC32 as zlib at 2-4x its speed (4.5 GiB/s
versus 2 on the CI VM) and releases the GIL, so checksums cost little CPU beside the copy
into the page cache. The files stay
readable by ``safetensors`` itself: 8-byte little-endian header length, a JSON header
padded with spaces to 8 bytes, then the tensors' bytes with no holes.
"""

from __future__ import annotations

import errno
import functools
import importlib
import json
import mmap
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from zlib_ng.zlib_ng import crc32

from berth.runtime.manifest import CorruptCheckpoint, FileEntry

CHUNK_SIZE = 16 << 20
"""Checksum granularity and I/O size: big enough for full disk speed, small enough to name a bad spot."""
_ALIGN = 4096
"""O_DIRECT granularity: buffer addresses, file offsets and lengths are multiples of it."""

# numpy dtype name -> safetensors dtype code. bfloat16 and float8 come from ml_dtypes (JAX, torch bridge).
_NP_TO_ST = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
_ST_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
}  # fmt: skip
_UNSUPPORTED_HINT = {
    "int4": "safetensors names no 4-bit integer type: pack two values per uint8 or cast to int8",
    "uint4": "safetensors names no 4-bit integer type: pack two values per uint8 or cast to uint8",
    "int2": "safetensors names no 2-bit integer type: pack them into uint8",
    "uint2": "safetensors names no 2-bit integer type: pack them into uint8",
    "float4_e2m1fn": "safetensors' F4 is packed two per byte; pack them into uint8",
    "complex128": "safetensors names only complex64 (C64): cast, or store real and imaginary parts",
    "object": "arrays of Python objects have no byte layout; convert them to a numeric dtype",
}

DATA_ALIGN = 64
"""The tensor data starts at a multiple of this in the file, and so do tensors whose size is a
multiple of it: JAX (XLA:CPU) adopts 64-byte aligned host memory through DLPack without a copy."""


_CODES: dict[np.dtype[Any], str] = {}


def st_dtype(np_dtype: np.dtype[Any]) -> str:
    """The safetensors code of a numpy dtype; TypeError for dtypes the format cannot hold."""
    code = _CODES.get(np_dtype)
    if code is not None:
        return code
    code = _NP_TO_ST.get(np_dtype.name)
    if code is not None and not np_dtype.names:
        _CODES[np_dtype] = code
    if code is None:
        name = "structured" if np_dtype.names else np_dtype.name
        hint = _UNSUPPORTED_HINT.get(name, f"safetensors names {', '.join(sorted(_ST_ITEMSIZE))}")
        raise TypeError(f"dtype {name} cannot be stored in a safetensors file ({hint})")
    return code


def np_dtype(code: str) -> np.dtype[Any]:
    """The numpy dtype for a safetensors code (ml_dtypes provides bfloat16/float8 when installed)."""
    for name, st in _NP_TO_ST.items():
        if st == code:
            try:
                return np.dtype(name)
            except TypeError:
                ml_dtypes = importlib.import_module("ml_dtypes")  # optional: only for such tensors
                found: np.dtype[Any] = np.dtype(getattr(ml_dtypes, name))
                return found
    raise CorruptCheckpoint(f"unknown safetensors dtype {code!r}")


@dataclass(frozen=True)
class TensorBytes:
    """One tensor ready to write: its name, safetensors dtype, shape and raw little-endian bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data: memoryview

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def order_key(dtype: str, name: str, nbytes: int = 0) -> tuple[bool, int, str]:
    """Sort key that puts tensors with larger items first so every tensor starts aligned.

    The format forbids padding between tensors; with power-of-two item sizes in decreasing
    order every offset is a multiple of the item size, so readers get aligned arrays. Tensors
    whose size is a multiple of DATA_ALIGN come first: each of them starts DATA_ALIGN-aligned
    (the data starts aligned, see header_bytes), which is what lets JAX adopt them zero-copy.
    """
    return (nbytes % DATA_ALIGN != 0, -_ST_ITEMSIZE[dtype], name)


class TensorSpec(Protocol):
    """What the header needs of a tensor (TensorBytes, or a tensor not yet copied)."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def nbytes(self) -> int: ...


def header_bytes(tensors: Sequence[TensorSpec], metadata: dict[str, str] | None = None) -> bytes:
    """The 8-byte length plus the JSON header for tensors in the given order."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-(len(raw) + 8) % DATA_ALIGN)  # the format allows trailing spaces
    return struct.pack("<Q", len(raw)) + raw


class _ChunkSums:
    """CRC32 of consecutive fixed-size chunks of a byte stream fed in arbitrary pieces."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.sums: list[int] = []
        self._crc = 0
        self._fill = 0

    def feed(self, piece: memoryview) -> None:
        pos = 0
        while pos < piece.nbytes:
            take = min(self.chunk_size - self._fill, piece.nbytes - pos)
            self._crc = crc32(piece[pos : pos + take], self._crc)
            self._fill += take
            pos += take
            if self._fill == self.chunk_size:
                self.sums.append(self._crc)
                self._crc, self._fill = 0, 0

    def finish(self) -> list[int]:
        if self._fill:
            self.sums.append(self._crc)
            self._crc, self._fill = 0, 0
        return self.sums


@functools.cache
def huge_faults_stall() -> bool:
    """Whether a page fault in a MADV_HUGEPAGE region may compact memory synchronously.

    Linux's THP ``defrag`` setting decides: with ``always``, ``madvise`` or ``defer+madvise``
    a fault waits for compaction. Measured on the CI VM (defrag=madvise, memory fragmented by
    other jobs): 70-180 MB/s faulting fresh huge pages against 400-1000 MB/s for 4 KiB pages.
    """
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/defrag").read_text()
        return text[text.index("[") + 1 : text.index("]")] in ("always", "madvise", "defer+madvise")
    except (OSError, ValueError):
        return False


def host_buffer(size: int, *, huge: bool = True) -> np.ndarray[tuple[int], np.dtype[np.uint8]]:
    """A fresh, page-aligned (64-byte aligned when small) byte buffer.

    ``huge``: allow transparent huge pages (fewer TLB misses when copying into it). They are
    asked for only where faulting them in does not stall on compaction
    (:func:`huge_faults_stall`), also for staging memory faulted in ahead of time: on the CI VM
    (THP defrag=madvise) faulting in 1 GiB of MADV_HUGEPAGE memory in the background took 16-23 s
    of compaction, burning CPU beside the training loop and yielding no huge page at all
    (AnonHugePages stayed 0), against 0.4-0.7 s for 4 KiB pages.
    """
    if size < (4 << 20) or not hasattr(mmap, "MADV_HUGEPAGE"):
        raw = np.empty(size + DATA_ALIGN, dtype=np.uint8)
        skip = -raw.ctypes.data % DATA_ALIGN
        return raw[skip : skip + size]
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge and not huge_faults_stall():
        region.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(region, dtype=np.uint8)  # the array keeps the mapping alive


_MADV_POPULATE_WRITE = 23  # Linux 5.14+


def prefault(buf: np.ndarray[tuple[int], np.dtype[np.uint8]]) -> None:
    """Fault in every page of ``buf`` now (one madvise, GIL released), so later copies into it
    run at memory speed instead of paying a page fault per page. Meant for a background thread."""
    if buf.size == 0:
        return
    try:
        import ctypes  # only here: keeps importing the runtime light

        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        start = buf.ctypes.data - buf.ctypes.data % mmap.PAGESIZE
        if libc.madvise(start, buf.ctypes.data + buf.size - start, _MADV_POPULATE_WRITE) == 0:
            return
    except (OSError, AttributeError):
        pass
    for pos in range(0, buf.size, 64 << 20):  # older kernels: write one byte per page
        buf[pos : pos + (64 << 20) : mmap.PAGESIZE] = 0


def _pieces(data: memoryview, size: int) -> Iterator[memoryview]:
    for pos in range(0, data.nbytes, size):
        yield data[pos : pos + size]


SMALL = 1 << 20
"""Blobs below this are gathered into one piece before they are written (a state of 100,000
tiny tensors makes a few writes, not 100,000)."""


def _coalesce(blobs: Sequence[memoryview], chunk_size: int) -> Iterator[memoryview]:
    """The blobs' bytes in order, as pieces of at most ``chunk_size``; small blobs are gathered."""
    gather = bytearray()
    for blob in blobs:
        flat = blob.cast("B") if blob.ndim != 1 or blob.format != "B" else blob
        if flat.nbytes < SMALL:
            gather += flat
            if len(gather) < SMALL:
                continue
            flat = memoryview(bytes(gather))
            gather.clear()
        elif gather:
            yield memoryview(bytes(gather))
            gather.clear()
        yield from _pieces(flat, chunk_size)
    if gather:
        yield memoryview(bytes(gather))


def _write_all(fd: int, piece: memoryview) -> None:
    while piece.nbytes:
        n = os.write(fd, piece)
        piece = piece[n:]


class _Inline(Executor):
    """Runs each task at once in the caller's thread: the writer of a fork snapshot
    (:mod:`berth.runtime.forksnap`) starts no thread in its child process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to whoever asks for the result, as a pool does
            done.set_exception(err)
        return done


def _crc_pool(threads: bool) -> Executor:
    """Where checksums run: a second thread (``threads``), else inline."""
    return ThreadPoolExecutor(1, thread_name_prefix="berth-crc") if threads else _Inline()


def _write_pieces(
    fd: int,
    pieces: Iterable[tuple[memoryview, memoryview]],
    sums: _ChunkSums,
    *,
    buffered: bool,
    threads: bool = True,
) -> int:
    """Write each ``(out, exact)`` pair's ``out``; checksum ``exact`` on a second thread.

    zlib-ng releases the GIL, so the disk never waits for the checksums. Buffered writes
    start the writeback of each piece at once (fadvise DONTNEED on dirty pages), so the disk
    works while we write instead of all at the final fsync: 2x on the CI VM. Returns the bytes.
    Without ``threads`` the checksums run inline (a fork snapshot's child).
    """
    size = 0
    with _crc_pool(threads) as pool:
        pending: Future[None] | None = None
        for out, exact in pieces:
            pending = pool.submit(sums.feed, exact)
            _write_all(fd, out)
            if buffered:
                os.posix_fadvise(fd, size, out.nbytes, os.POSIX_FADV_DONTNEED)
            size += exact.nbytes
        if pending is not None:
            pending.result()
    return size


def write_stream(
    path: str,
    blobs: Sequence[memoryview],
    *,
    chunk_size: int = CHUNK_SIZE,
    threads: bool = True,
) -> FileEntry:
    """Write byte blobs back to back into a new file, fsync it, and return its checksummed entry."""
    sums = _ChunkSums(chunk_size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        pieces = ((p, p) for p in _coalesce(blobs, chunk_size))
        size = _write_pieces(fd, pieces, sums, buffered=True, threads=threads)
        os.fsync(fd)
    finally:
        os.close(fd)
    return FileEntry(name=os.path.basename(path), size=size, chunk_size=chunk_size, crc32=tuple(sums.finish()))


def write_image(
    path: str,
    image: np.ndarray[tuple[int], np.dtype[np.uint8]],
    size: int,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> FileEntry:
    """Write the first ``size`` bytes of a page-aligned file image with O_DIRECT, fsynced.

    DMA from our buffer skips the page-cache copy (half the CPU of a buffered write, and
    fsync has nothing left to flush). ``image`` must extend to a multiple of 4096 bytes;
    filesystems that refuse O_DIRECT get a buffered write of the same bytes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    direct = image.ctypes.data % _ALIGN == 0 and chunk_size % _ALIGN == 0 and image.size >= -(-size // _ALIGN) * _ALIGN
    try:
        fd = os.open(path, flags | (os.O_DIRECT if direct else 0), 0o644)
    except OSError as err:
        if not direct or err.errno != errno.EINVAL:
            raise
        direct, fd = False, os.open(path, flags, 0o644)
    view, sums = image.data, _ChunkSums(chunk_size)

    def pieces() -> Iterator[tuple[memoryview, memoryview]]:
        for pos in range(0, size, chunk_size):
            exact = view[pos : min(pos + chunk_size, size)]
            yield (view[pos : pos + -(-exact.nbytes // _ALIGN) * _ALIGN] if direct else exact), exact

    try:
        _write_pieces(fd, pieces(), sums, buffered=not direct)
        if direct:
            os.ftruncate(fd, size)  # drop the padding of the last block
        os.fsync(fd)
    finally:
        os.close(fd)
    return FileEntry(name=os.path.basename(path), size=size, chunk_size=chunk_size, crc32=tuple(sums.finish()))


def write_gathered(
    path: str,
    blobs: Sequence[memoryview],
    *,
    chunk_size: int = CHUNK_SIZE,
    threads: bool = True,
    copied: Callable[[np.ndarray[tuple[int], np.dtype[np.uint8]], int], None] | None = None,
) -> FileEntry:
    """Write blobs back to back with O_DIRECT through two page-aligned bounce buffers, fsynced.

    For sources O_DIRECT cannot DMA from (arrays are 64-byte aligned at best, not 4096): each
    chunk is gathered into a bounce buffer (a memcpy, far faster than the disk) and written
    without the page cache, like an async save's image. The CRC of a chunk runs on a second
    thread while the next one is gathered and written. Measured on the CI VM with 4 processes
    writing 256 MiB each at once: 1,000-1,400 MiB/s against 230-580 MiB/s buffered (and 140-440
    for 4 dd conv=fsync). Files under 4 MiB, chunk sizes that are not whole pages, and
    filesystems that refuse O_DIRECT get :func:`write_stream`. Without ``threads`` the CRCs run
    inline, between the writes (a fork snapshot's child starts no thread). ``copied(src, n)`` is
    told after the first ``n`` bytes of a source went into a bounce buffer: nothing reads them
    again (a fork snapshot's child gives their pages back).
    """
    total = sum(b.nbytes for b in blobs)
    if chunk_size % _ALIGN or chunk_size < (4 << 20) or total < (4 << 20):
        return write_stream(path, blobs, chunk_size=chunk_size, threads=threads)  # small: the page cache is cheaper
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_DIRECT, 0o644)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        return write_stream(path, blobs, chunk_size=chunk_size, threads=threads)
    sums = _ChunkSums(chunk_size)
    piece = min(chunk_size, -(-total // _ALIGN) * _ALIGN)
    bounce = [host_buffer(piece, huge=False) for _ in range(2)]
    sources = (np.frombuffer(b.cast("B") if b.ndim != 1 or b.format != "B" else b, dtype=np.uint8) for b in blobs)
    size = 0
    try:
        with _crc_pool(threads) as pool:
            pending: list[Future[None] | None] = [None, None]
            src: np.ndarray[tuple[int], np.dtype[np.uint8]] | None = next(sources, None)
            at, k = 0, 0
            while src is not None:
                done = pending[k]
                if done is not None:
                    done.result()  # its checksum has read the buffer: it may be refilled
                buf, fill = bounce[k], 0
                while src is not None and fill < piece:
                    take = min(piece - fill, src.size - at)
                    buf[fill : fill + take] = src[at : at + take]
                    fill, at = fill + take, at + take
                    if copied is not None:
                        copied(src, at)
                    if at == src.size:
                        src, at = next(sources, None), 0
                if fill == 0:
                    break
                pending[k] = pool.submit(sums.feed, buf.data[:fill])
                _write_all(fd, buf.data[: -(-fill // _ALIGN) * _ALIGN])
                size += fill
                k ^= 1
            for done in pending:
                if done is not None:
                    done.result()
        os.ftruncate(fd, size)  # drop the padding of the last block
        os.fsync(fd)
    finally:
        os.close(fd)
    return FileEntry(name=os.path.basename(path), size=size, chunk_size=chunk_size, crc32=tuple(sums.finish()))


def write_safetensors(
    path: str,
    tensors: Sequence[TensorBytes],
    metadata: dict[str, str] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> FileEntry:
    """Stream tensors (already sorted by :func:`order_key`) into a safetensors file, fsynced."""
    head = memoryview(header_bytes(tensors, metadata))
    return write_stream(path, [head, *(t.data for t in tensors)], chunk_size=chunk_size)


READ_THREADS = 4
"""Parallel chunk reads: they overlap disk latency with page faults and CRCs (2x-5x on a VM)."""


def _open_direct(path: str) -> int | None:
    """An O_DIRECT descriptor (DMA into our buffer, no page-cache copy: half the CPU), or None."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
    except (OSError, AttributeError):  # tmpfs and some FUSE filesystems refuse O_DIRECT
        return None


class FileMapping(mmap.mmap):
    """A private, copy-on-write mapping of a checkpoint file: arrays over it are the page cache's
    pages, not a copy. Its own type so :func:`mapped` can tell it from anonymous buffers."""


def mapped(arr: np.ndarray[Any, Any]) -> bool:
    """Whether ``arr`` is a view of a :class:`FileMapping` (so it keeps that file's blocks allocated)."""
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer keeps the exporter behind a memoryview
        base = base.obj
    return isinstance(base, FileMapping)


MAP_READS: ContextVar[bool] = ContextVar("berth_map_reads", default=False)
"""Whether :func:`read_verified` maps big files instead of reading them into fresh memory.

Set by the checkpoint manager around a restore whose state holds JAX arrays: those are
immutable and replaced by the next training step, so they can live on the file's page-cache
pages (no fresh memory to fault in and zero, no copy: 1.5-2x faster, half the CPU on the CI
VM) and release the file when the training loop drops them. Mutable arrays (numpy, torch) are
copied out of a mapping (:mod:`berth.runtime.tree`), so a deleted step's blocks are never held
by arrays a trainer updates in place for the rest of the run.
"""


def _read_mapped(
    path: str, entry: FileEntry, verify: bool, progress: Callable[[int], None] | None
) -> np.ndarray[tuple[int], np.dtype[np.uint8]] | None:
    """Map the file and check every chunk's CRC on READ_THREADS threads; None where it cannot be mapped.

    Each thread faults in its own chunks (the kernel reads ahead within each), so the disk
    sees several sequential streams, like the O_DIRECT reader, without its fresh buffer.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        region = FileMapping(fd, entry.size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError):  # a filesystem without mmap support: read it instead
        return None
    finally:
        os.close(fd)
    buf: np.ndarray[tuple[int], np.dtype[np.uint8]] = np.frombuffer(region, dtype=np.uint8)
    view, size, step = buf.data, entry.size, entry.chunk_size
    advise = step % mmap.PAGESIZE == 0 and hasattr(region, "madvise")

    def chunk(index: int) -> bool:
        pos = index * step
        n = min(step, size - pos)
        if advise:
            region.madvise(mmap.MADV_WILLNEED, pos, n)  # read the whole chunk ahead, not 128 KiB at a time
        if progress is not None:
            progress(n)
        return not verify or crc32(view[pos : pos + n]) == entry.crc32[index]

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="berth-read") as pool:
        good = list(pool.map(chunk, range(-(-size // step))))
    _raise_bad(path, entry, good)
    return buf


def _raise_bad(path: str, entry: FileEntry, good: list[bool]) -> None:
    if not all(good):
        index = good.index(False)
        raise CorruptCheckpoint(
            f"{path}: checksum mismatch in chunk {index} (bytes {index * entry.chunk_size}"
            f"-{min((index + 1) * entry.chunk_size, entry.size)})",
            path=path,
            chunk=index,
        )


def read_verified(
    path: str,
    entry: FileEntry,
    *,
    verify: bool = True,
    progress: Callable[[int], None] | None = None,
    map_file: bool | None = None,
) -> np.ndarray[tuple[int], np.dtype[np.uint8]]:
    """Read a whole file into one fresh buffer, checking every chunk's CRC32 as it arrives.

    Raises CorruptCheckpoint naming the file and the first bad chunk. Big files are read
    with O_DIRECT in aligned chunks (falling back to buffered reads where refused), or, with
    ``map_file`` (default: :data:`MAP_READS`), mapped (:class:`FileMapping`) and checked in place.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError as err:
        raise CorruptCheckpoint(f"{path}: missing", path=path) from err
    if st.st_size != entry.size:
        raise CorruptCheckpoint(f"{path}: size {st.st_size}, manifest says {entry.size}", path=path)
    nchunks = -(-entry.size // entry.chunk_size)
    if verify and nchunks != len(entry.crc32):
        raise CorruptCheckpoint(f"{path}: {nchunks} chunks, manifest lists {len(entry.crc32)}", path=path)
    if (MAP_READS.get() if map_file is None else map_file) and entry.size >= (4 << 20):
        found = _read_mapped(path, entry, verify, progress)
        if found is not None:
            return found
    padded = host_buffer(-(-entry.size // _ALIGN) * _ALIGN)  # O_DIRECT reads whole blocks
    view = padded.data
    aligned = padded.ctypes.data % _ALIGN == 0 and entry.chunk_size % _ALIGN == 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    direct = _open_direct(path) if aligned and entry.size >= (4 << 20) else None

    def read_into(index: int, use: int | None) -> None:
        pos = index * entry.chunk_size
        need = min(entry.chunk_size, entry.size - pos)
        span = view[pos : pos + (-(-need // _ALIGN) * _ALIGN if use is not None else need)]
        got = 0
        while got < need:
            n = os.preadv(use if use is not None else fd, [span[got:]], pos + got)
            if n == 0:
                raise CorruptCheckpoint(f"{path}: truncated at byte {pos + got}", path=path, chunk=index)
            got += n

    def chunk(index: int) -> bool:
        try:
            read_into(index, direct)
        except OSError as err:
            if direct is None or err.errno != errno.EINVAL:
                raise
            read_into(index, None)  # this filesystem wants something O_DIRECT cannot give
        pos = index * entry.chunk_size
        piece = view[pos : min(pos + entry.chunk_size, entry.size)]
        if progress is not None:
            progress(piece.nbytes)
        return not verify or crc32(piece) == entry.crc32[index]

    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="berth-read") as pool:
            good = list(pool.map(chunk, range(nchunks)))
    finally:
        os.close(fd)
        if direct is not None:
            os.close(direct)
    _raise_bad(path, entry, good)
    return padded[: entry.size]


def parse_safetensors(
    buf: np.ndarray[tuple[int], np.dtype[np.uint8]], path: str = "<buffer>"
) -> tuple[dict[str, tuple[str, tuple[int, ...], np.ndarray[tuple[int], np.dtype[np.uint8]]]], dict[str, str]]:
    """Split a safetensors file held in memory into (dtype code, shape, zero-copy byte view) per tensor.

    Bytes rather than typed arrays so torch can reinterpret dtypes numpy lacks (bfloat16).
    """
    try:
        (hlen,) = struct.unpack("<Q", buf[:8].tobytes())
        header = json.loads(buf[8 : 8 + hlen].tobytes())
    except (struct.error, ValueError) as err:
        raise CorruptCheckpoint(f"{path}: unreadable safetensors header ({err})", path=path) from err
    if not isinstance(header, dict):
        raise CorruptCheckpoint(f"{path}: safetensors header is not an object", path=path)
    base = 8 + hlen
    metadata = header.pop("__metadata__", None) or {}
    tensors: dict[str, tuple[str, tuple[int, ...], np.ndarray[tuple[int], np.dtype[np.uint8]]]] = {}
    for name, info in header.items():
        try:
            code = str(info["dtype"])
            begin, end = (int(x) for x in info["data_offsets"])
            shape = tuple(int(x) for x in info["shape"])
            itemsize = _ST_ITEMSIZE[code]
        except (KeyError, TypeError, ValueError) as err:
            raise CorruptCheckpoint(f"{path}: bad entry for tensor {name!r}", path=path) from err
        if base + end > buf.size or end - begin != itemsize * int(np.prod(shape, dtype=np.int64)):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} does not fit the file", path=path)
        tensors[name] = (code, shape, buf[base + begin : base + end])
    return tensors, {str(k): str(v) for k, v in metadata.items()}
