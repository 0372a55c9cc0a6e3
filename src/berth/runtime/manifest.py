"""The manifest of one rank's shard of one step: the commit record that makes it restorable.

A shard without a parseable manifest does not exist as far as restore is concerned; the
manifest is written last, after every file it lists is on disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from berth.errors import BerthError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TENSORS_NAME = "tensors.safetensors"
META_NAME = "meta.json"


class CorruptCheckpoint(BerthError):
    """A shard fails verification; ``path`` and ``chunk`` say where."""

    def __init__(self, message: str, *, path: str | None = None, chunk: int | None = None) -> None:
        super().__init__(message, hint="the step is skipped on restore; `berth ckpt verify DIR` lists every bad file")
        self.path = path
        self.chunk = chunk


@dataclass(frozen=True)
class FileEntry:
    """A file of the shard: its size and the CRC32 of each ``chunk_size`` bytes."""

    name: str
    size: int
    chunk_size: int
    crc32: tuple[int, ...]

    def chunk_span(self, index: int) -> tuple[int, int]:
        """Offset and length of chunk ``index`` (the last one is short when the size is not a multiple)."""
        offset = index * self.chunk_size
        return offset, min(self.chunk_size, self.size - offset)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "chunk_size": self.chunk_size, "crc32": list(self.crc32)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileEntry:
        return cls(str(raw["name"]), int(raw["size"]), int(raw["chunk_size"]), tuple(int(c) for c in raw["crc32"]))


@dataclass(frozen=True)
class TensorEntry:
    """Where a tensor lives: file, name inside it, dtype code and shape (the index ``show`` prints)."""

    name: str
    file: str
    dtype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TensorEntry:
        return cls(str(raw["name"]), str(raw["file"]), str(raw["dtype"]), tuple(int(x) for x in raw["shape"]))


@dataclass(frozen=True)
class Manifest:
    """Everything needed to verify and load one rank's shard of one step."""

    step: int
    rank: int
    world_size: int
    created: float
    files: tuple[FileEntry, ...]
    tensors: tuple[TensorEntry, ...]

    @property
    def nbytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise CorruptCheckpoint(f"manifest of step {self.step} rank {self.rank} lists no {name}")

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": "berth-checkpoint",
                "version": FORMAT_VERSION,
                "step": self.step,
                "rank": self.rank,
                "world_size": self.world_size,
                "created": self.created,
                "files": [f.to_json() for f in self.files],
                "tensors": [t.to_json() for t in self.tensors],
            },
            indent=1 if len(self.tensors) <= 1000 else None,  # json's C encoder only without indent
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(raw)
            if doc.get("format") != "berth-checkpoint" or int(doc["version"]) > FORMAT_VERSION:
                raise ValueError(f"unsupported format {doc.get('format')!r} version {doc.get('version')!r}")
            return cls(
                step=int(doc["step"]),
                rank=int(doc["rank"]),
                world_size=int(doc["world_size"]),
                created=float(doc["created"]),
                files=tuple(FileEntry.from_json(f) for f in doc["files"]),
                tensors=tuple(TensorEntry.from_json(t) for t in doc["tensors"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CorruptCheckpoint(f"{where}: unreadable manifest ({err})", path=where) from err
