"""One rank's shard of one step: snapshot a state, write it through the store, load it back,
or fetch it from the archive (verified before it is committed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from berth.runtime.archive import Archive, Progress
from berth.runtime.manifest import META_NAME, TENSORS_NAME, CorruptCheckpoint, Manifest, TensorEntry
from berth.runtime.safetensors_io import (
    CHUNK_SIZE,
    TensorBytes,
    header_bytes,
    host_buffer,
    order_key,
    parse_safetensors,
    read_verified,
    write_image,
    write_safetensors,
    write_stream,
)
from berth.runtime.store import LocalStore
from berth.runtime.tree import U8Array, flatten, unflatten


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

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors) + len(self.meta)


class Staging:
    """A host buffer reused across async saves, so snapshots do not page-fault fresh memory each time."""

    def __init__(self) -> None:
        self._buf: U8Array | None = None

    def get(self, size: int) -> U8Array:
        if self._buf is None or self._buf.size < size:
            self._buf = host_buffer(max(size, 1))
        return self._buf[:size]


COPY_THREADS = 4
METADATA = {"producer": "berth"}
SHARD_OVERHEAD = 64 * 1024
"""Room for the header, the metadata and the manifest on top of the tensor bytes."""


def prepare(state: object, staging: Staging | None, check: Callable[[int], None] | None = None) -> Prepared:
    """Flatten ``state``; with ``staging`` copy every tensor into host memory (the async snapshot).

    ``check`` sees the shard's size before any copy (the pre-flight space check fails fast).
    Without staging the tensors are written straight from the caller's arrays (sync save),
    which must then not change until the write is done.
    """
    skeleton, leaves = flatten(state)
    leaves.sort(key=lambda leaf: order_key(leaf.dtype, leaf.name))
    meta = json.dumps({"skeleton": skeleton}, separators=(",", ":")).encode()
    if check is not None:
        check(sum(leaf.nbytes for leaf in leaves) + len(meta) + SHARD_OVERHEAD)
    tensors: list[TensorBytes] = []
    if staging is None:
        tensors = [TensorBytes(leaf.name, leaf.dtype, leaf.shape, leaf.host().data) for leaf in leaves]
        return Prepared(tensors, meta)
    head = header_bytes(leaves, METADATA)
    size = len(head) + sum(leaf.nbytes for leaf in leaves)
    image = staging.get(-(-size // 4096) * 4096)  # whole blocks, for O_DIRECT
    image[: len(head)] = np.frombuffer(head, dtype=np.uint8)
    slots = []
    pos = len(head)
    for leaf in leaves:
        slots.append(image[pos : pos + leaf.nbytes])
        tensors.append(TensorBytes(leaf.name, leaf.dtype, leaf.shape, slots[-1].data))
        pos += leaf.nbytes
    # Copies release the GIL: several threads reach more of the memory bandwidth (1.5-2x here).
    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="berth-snap") as pool:
        list(pool.map(lambda pair: pair[0].copy_into(pair[1]), zip(leaves, slots, strict=True)))
    return Prepared(tensors, meta, image, size)


def write_shard(
    store: LocalStore,
    step: int,
    world_size: int,
    prepared: Prepared,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Manifest:
    """Write, fsync and atomically commit this rank's shard of ``step``.

    The pre-flight space check is :func:`prepare`'s, before the snapshot copy; here a real
    ENOSPC becomes the same message through the store's staging directory.
    """
    with store.staging(step, prepared.nbytes + SHARD_OVERHEAD) as tmp:
        path = str(tmp / TENSORS_NAME)
        if prepared.image is not None:
            tensor_file = write_image(path, prepared.image, prepared.image_size, chunk_size=chunk_size)
        else:
            tensor_file = write_safetensors(path, prepared.tensors, METADATA, chunk_size=chunk_size)
        meta_file = write_stream(str(tmp / META_NAME), [memoryview(prepared.meta)], chunk_size=chunk_size)
        manifest = Manifest(
            step=step,
            rank=store.rank,
            world_size=world_size,
            created=time.time(),
            files=(tensor_file, meta_file),
            tensors=tuple(TensorEntry(t.name, TENSORS_NAME, t.dtype, t.shape) for t in prepared.tensors),
        )
        store.commit(tmp, manifest)
    return manifest


def load_shard(shard: Path, manifest: Manifest) -> object:
    """Read and verify every chunk of a shard, then rebuild the state (tensors are zero-copy views)."""
    meta_raw = read_verified(str(shard / META_NAME), manifest.file(META_NAME))
    buf = read_verified(str(shard / TENSORS_NAME), manifest.file(TENSORS_NAME))
    tensors, _ = parse_safetensors(buf, str(shard / TENSORS_NAME))
    try:
        meta = json.loads(meta_raw.tobytes())
        skeleton = meta["skeleton"]
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpoint(f"{shard / META_NAME}: unreadable ({err})", path=str(shard / META_NAME)) from err
    return unflatten(skeleton, tensors)


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
