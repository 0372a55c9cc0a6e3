"""One rank's shard of one step: snapshot a state, write it through the store, load it back,
or fetch it from the archive (verified before it is committed)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from berth.runtime.archive import Archive, Progress
from berth.runtime.manifest import META_NAME, TENSORS_NAME, CorruptCheckpoint, Manifest, TensorEntry
from berth.runtime.safetensors_io import (
    CHUNK_SIZE,
    DATA_ALIGN,
    TensorBytes,
    header_bytes,
    host_buffer,
    huge_faults_stall,
    order_key,
    parse_safetensors,
    prefault,
    read_verified,
    write_gathered,
    write_image,
    write_stream,
)
from berth.runtime.store import LocalStore
from berth.runtime.tree import Leaf, U8Array, flatten, tensor_kinds, unflatten

log = logging.getLogger("berth.checkpoint")


@dataclass
class Prepared:
    """A state turned into bytes ready to write: tensors in file order plus the skeleton JSON.

    After an async snapshot ``image`` holds the whole tensors file as it will be on disk
    (header included) in a page-aligned buffer, so it can be written with O_DIRECT.
    """

    tensors: list[TensorBytes]
    meta: bytes
    image: U8Array | None = None
    image_size: int = 0
    pads: frozenset[str] = frozenset()
    """Names of the padding entries among ``tensors`` (in the file, not in the manifest's index)."""

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors) + len(self.meta)


class Staging:
    """A host buffer reused across async saves, so snapshots do not page-fault fresh memory each time.

    ``reserve`` allocates and faults it in on a background thread (after a restore the manager
    knows the size), so even the first save after a start copies at memory speed.
    """

    def __init__(self) -> None:
        self._buf: U8Array | None = None
        self._filling: threading.Thread | None = None

    def reserve(self, size: int) -> None:
        """Have at least ``size`` bytes ready and faulted in; the work runs on a background thread."""
        self._join()
        if size <= 0 or (self._buf is not None and self._buf.size >= size):
            return
        self._buf = None  # give the old one back before taking the new one

        def fill() -> None:
            try:
                buf = host_buffer(size, huge=True)
                prefault(buf)
                self._buf = buf
            except (MemoryError, OSError) as err:
                log.warning("could not reserve %d bytes of staging memory: %s", size, err)

        self._filling = threading.Thread(target=fill, name="berth-prefault", daemon=True)
        self._filling.start()

    def _join(self) -> None:
        if self._filling is not None:
            self._filling.join()
            self._filling = None

    @property
    def size(self) -> int:
        self._join()
        return 0 if self._buf is None else int(self._buf.size)

    def get(self, size: int) -> U8Array:
        self._join()  # a reservation under way is done sooner than faulting the pages here
        if size == 0:
            return np.empty(0, dtype=np.uint8)
        if self._buf is None or self._buf.size < size:
            self._buf = None
            self._buf = host_buffer(size, huge=not huge_faults_stall())
        return self._buf[:size]


COPY_THREADS = 4
COPY_PIECE = 16 << 20
"""Copies are split into pieces of this size, spread over COPY_THREADS (they release the GIL)."""
METADATA = {"producer": "berth"}
SHARD_OVERHEAD = 64 * 1024
"""Room for the header, the metadata and the manifest on top of the tensor bytes."""


def _aligned(n: int, to: int = DATA_ALIGN) -> int:
    return -(-n // to) * to


def _copy_batch(batch: list[tuple[Leaf, U8Array]]) -> None:
    for leaf, dst in batch:
        leaf.copy_into(dst)


def _snapshot(jobs: list[tuple[Leaf, U8Array]]) -> None:
    """Copy every leaf into its slot: big contiguous ones in pieces, small ones in batches."""
    tasks: list[Callable[[], None]] = []
    batch: list[tuple[Leaf, U8Array]] = []
    batch_bytes = 0
    for leaf, dst in jobs:
        if leaf.flat is not None and leaf.nbytes > COPY_PIECE:
            for pos in range(0, leaf.nbytes, COPY_PIECE):
                tasks.append(partial(np.copyto, dst[pos : pos + COPY_PIECE], leaf.flat[pos : pos + COPY_PIECE]))
            continue
        batch.append((leaf, dst))
        batch_bytes += leaf.nbytes
        if batch_bytes >= COPY_PIECE:
            tasks.append(partial(_copy_batch, batch))
            batch, batch_bytes = [], 0
    if batch:
        tasks.append(partial(_copy_batch, batch))
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    # Copies release the GIL: several threads reach more of the memory bandwidth.
    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="berth-snap") as pool:
        for done in [pool.submit(task) for task in tasks]:
            done.result()


def staging_need(leaves: list[Leaf], header_len: int) -> int:
    """Bytes of staging memory an async save of these leaves uses (see :func:`prepare`)."""
    copied = [leaf for leaf in leaves if not leaf.zero_copy]
    if len(copied) == len(leaves):
        return _aligned(header_len + sum(leaf.nbytes for leaf in leaves), 4096)
    return sum(_aligned(leaf.nbytes) for leaf in copied)


PAD_DTYPE = "U8"
PAD_MIN = 64 << 10
"""Tensors of at least this size that would start unaligned get a padding entry before them."""


@dataclass(frozen=True)
class Pad:
    """Zero bytes named in the header like a tensor (the format allows no holes), placed before
    a big tensor so it starts DATA_ALIGN-aligned and restores into JAX without a copy."""

    name: str
    nbytes: int
    dtype: str = PAD_DTYPE

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.nbytes,)

    def bytes(self) -> TensorBytes:
        return TensorBytes(self.name, self.dtype, self.shape, memoryview(bytes(self.nbytes)))


def layout(leaves: list[Leaf]) -> list[Leaf | Pad]:
    """File order: ``order_key`` order, with a Pad before every big tensor that would start unaligned."""
    leaves.sort(key=lambda leaf: order_key(leaf.dtype, leaf.name, leaf.nbytes))
    taken = {leaf.name for leaf in leaves}
    out: list[Leaf | Pad] = []
    offset = 0
    for leaf in leaves:
        gap = -offset % DATA_ALIGN
        if gap and leaf.nbytes >= PAD_MIN:
            name = f"__berth_pad_{len(out)}"
            while name in taken:
                name += "_"
            out.append(Pad(name, gap))
            offset += gap
        out.append(leaf)
        offset += leaf.nbytes
    return out


def prepare(state: object, staging: Staging | None, check: Callable[[int], None] | None = None) -> Prepared:
    """Flatten ``state``; with ``staging`` snapshot every mutable tensor into host memory (async save).

    ``check`` sees the shard's size before any copy (the pre-flight space check fails fast).
    Without staging the tensors are written straight from the caller's arrays (sync save),
    which must then not change until the write is done. Immutable arrays (JAX) are never
    copied: the snapshot holds a view of their buffers. When every tensor is copied, the
    copies form the whole file image (header included) for an O_DIRECT write.
    """
    skeleton, leaves = flatten(state)
    entries = layout(leaves)
    pads = frozenset(e.name for e in entries if isinstance(e, Pad))
    meta = json.dumps({"skeleton": skeleton}, separators=(",", ":")).encode()
    if check is not None:
        check(sum(e.nbytes for e in entries) + len(meta) + SHARD_OVERHEAD)
    if staging is None:
        tensors = [
            e.bytes() if isinstance(e, Pad) else TensorBytes(e.name, e.dtype, e.shape, e.host().data) for e in entries
        ]
        return Prepared(tensors, meta, pads=pads)
    head = header_bytes(entries, METADATA)
    image = all(not leaf.zero_copy for leaf in leaves)
    buf = staging.get(staging_need(leaves, len(head) + _pad_bytes(entries)))
    pos = 0
    if image:
        buf[: len(head)] = np.frombuffer(head, dtype=np.uint8)
        pos = len(head)
    tensors = []
    jobs: list[tuple[Leaf, U8Array]] = []
    for e in entries:
        if isinstance(e, Pad):
            if image:
                buf[pos : pos + e.nbytes] = 0
                tensors.append(TensorBytes(e.name, e.dtype, e.shape, buf[pos : pos + e.nbytes].data))
                pos += e.nbytes
            else:
                tensors.append(e.bytes())
            continue
        if e.zero_copy:
            tensors.append(TensorBytes(e.name, e.dtype, e.shape, e.host().data))
            continue
        slot = buf[pos : pos + e.nbytes]
        jobs.append((e, slot))
        tensors.append(TensorBytes(e.name, e.dtype, e.shape, slot.data))
        pos += e.nbytes if image else _aligned(e.nbytes)
    _snapshot(jobs)
    if image:
        return Prepared(tensors, meta, buf, pos, pads=pads)
    return Prepared(tensors, meta, pads=pads)


def _pad_bytes(entries: list[Leaf | Pad]) -> int:
    return sum(e.nbytes for e in entries if isinstance(e, Pad))


def write_shard(
    store: LocalStore,
    step: int,
    world_size: int,
    prepared: Prepared,
    *,
    chunk_size: int = CHUNK_SIZE,
    threads: bool = True,
    copied: Callable[[U8Array, int], None] | None = None,
) -> Manifest:
    """Write, fsync and atomically commit this rank's shard of ``step``.

    The pre-flight space check is :func:`prepare`'s, before the snapshot copy; here a real
    ENOSPC becomes the same message through the store's staging directory. Without
    ``threads`` nothing here starts a thread (the child of a fork snapshot); ``copied`` is
    :func:`write_gathered`'s.
    """
    with store.staging(step, prepared.nbytes + SHARD_OVERHEAD) as tmp:
        path = str(tmp / TENSORS_NAME)
        if prepared.image is not None:
            tensor_file = write_image(path, prepared.image, prepared.image_size, chunk_size=chunk_size)
        else:  # from the arrays themselves (sync save) or views of immutable ones (async, JAX)
            head = memoryview(header_bytes(prepared.tensors, METADATA))
            blobs = [head, *(t.data for t in prepared.tensors)]
            tensor_file = write_gathered(path, blobs, chunk_size=chunk_size, threads=threads, copied=copied)
        meta_file = write_stream(
            str(tmp / META_NAME), [memoryview(prepared.meta)], chunk_size=chunk_size, threads=threads
        )
        manifest = Manifest(
            step=step,
            rank=store.rank,
            world_size=world_size,
            created=time.time(),
            files=(tensor_file, meta_file),
            tensors=tuple(
                TensorEntry(t.name, TENSORS_NAME, t.dtype, t.shape)
                for t in prepared.tensors
                if t.name not in prepared.pads
            ),
        )
        store.commit(tmp, manifest)
    return manifest


def load_shard(shard: Path, manifest: Manifest) -> tuple[object, int]:
    """Read and verify every chunk of a shard, then rebuild the state (tensors are zero-copy views).

    Also returns the staging memory an async save of the same state will use, so the caller
    can fault it in ahead of the first save (:meth:`Staging.reserve`).
    """
    meta_raw = read_verified(str(shard / META_NAME), manifest.file(META_NAME))
    buf = read_verified(str(shard / TENSORS_NAME), manifest.file(TENSORS_NAME))
    tensors, _ = parse_safetensors(buf, str(shard / TENSORS_NAME))
    try:
        meta = json.loads(meta_raw.tobytes())
        skeleton = meta["skeleton"]
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpoint(f"{shard / META_NAME}: unreadable ({err})", path=str(shard / META_NAME)) from err
    state = unflatten(skeleton, tensors)
    kinds = tensor_kinds(skeleton)
    copied = [raw.size for name, (_, _, raw) in tensors.items() if kinds.get(name, "numpy") != "jax"]
    if len(copied) == len(tensors):
        need = _aligned(manifest.file(TENSORS_NAME).size, 4096)
    else:
        need = sum(_aligned(n) for n in copied)
    return state, need


def verify_shard(shard: Path, manifest: Manifest, progress: Progress | None = None) -> None:
    """Check every chunk of every file against the manifest; raises CorruptCheckpoint."""
    for entry in manifest.files:
        read_verified(str(shard / entry.name), entry, progress=progress)


def fetch_shard(archive: Archive, store: LocalStore, manifest: Manifest, progress: Progress | None = None) -> Path:
    """Download the store's rank's shard of ``manifest.step``, verify every chunk, then commit it.

    The one download path of ``CheckpointManager.fetch`` and ``berth ckpt restore``: committed
    means verified, so bit rot in the object store never becomes a restorable local step (a bad
    download raises CorruptCheckpoint and its staging directory is removed). The shard is then
    marked archived: it is a copy of what the archive holds, so retention may drop it.
    """
    with store.staging(manifest.step, manifest.nbytes) as tmp:
        archive.download_shard(manifest.step, store.rank, tmp, progress, manifest=manifest)
        verify_shard(tmp, manifest)
        shard = store.commit(tmp, manifest)
    store.mark_archived(manifest.step)
    return shard
