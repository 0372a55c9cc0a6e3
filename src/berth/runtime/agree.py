"""Agreement hooks: all ranks pick the same step to restore, or fall back together.

An agreement is a callable taking this rank's candidate steps and returning the steps every
rank offered (newest first). ``restore()`` calls it once for the candidates and once per
step it tries ("did everyone load it?"), so every rank makes the same sequence of calls.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from berth.errors import BerthError

Agreement = Callable[[Sequence[int]], list[int]]


def intersect(offers: Sequence[Sequence[int]]) -> list[int]:
    """Steps present in every rank's offer, newest first."""
    common = set(offers[0]) if offers else set()
    for offer in offers[1:]:
        common &= set(offer)
    return sorted(common, reverse=True)


def alone(steps: Sequence[int]) -> list[int]:
    """The agreement of a single rank."""
    return sorted(set(steps), reverse=True)


class TorchDistributedAgreement:
    """Agree through an initialised torch.distributed process group (all_gather_object)."""

    def __call__(self, steps: Sequence[int]) -> list[int]:
        dist = importlib.import_module("torch.distributed")
        offers: list[list[int] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(offers, sorted(set(steps)))
        return intersect([o or [] for o in offers])


class _Board(Protocol):
    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...


class PollingAgreement:
    """Each rank posts its offer for round k on a shared board and waits for the other ranks'.

    ``session`` must be the same on every rank and new for every start of the job (a job id,
    the restart count), so offers of an earlier run are never mistaken for this one's.
    """

    def __init__(
        self, board: _Board, rank: int, world_size: int, session: str, *, timeout: float = 600, poll: float = 0.05
    ) -> None:
        self.board, self.rank, self.world_size = board, rank, world_size
        self.session, self.timeout, self.poll = session, timeout, poll
        self._round = 0

    def __call__(self, steps: Sequence[int]) -> list[int]:
        self._round += 1
        prefix = f"{self.session}/round-{self._round:04d}"
        self.board.put(f"{prefix}/rank-{self.rank:05d}.json", json.dumps(sorted(set(steps))).encode())
        deadline = time.monotonic() + self.timeout
        offers: dict[int, list[int]] = {}
        while len(offers) < self.world_size:
            for r in range(self.world_size):
                if r not in offers:
                    raw = self.board.get(f"{prefix}/rank-{r:05d}.json")
                    if raw is not None:
                        offers[r] = [int(s) for s in json.loads(raw)]
            if len(offers) < self.world_size:
                if time.monotonic() > deadline:
                    missing = sorted(set(range(self.world_size)) - set(offers))
                    raise BerthError(
                        f"checkpoint agreement timed out after {self.timeout:.0f}s waiting for ranks {missing}",
                        hint="all ranks must call restore() with the same agreement session",
                    )
                time.sleep(self.poll)
        return intersect(list(offers.values()))


class DirectoryBoard:
    """A board on a directory every rank can see (a shared volume, NFS)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the whole offer or none

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None


def shared_directory(
    root: str | os.PathLike[str], rank: int, world_size: int, session: str, *, timeout: float = 600
) -> PollingAgreement:
    """Agreement through a directory shared by all ranks."""
    return PollingAgreement(DirectoryBoard(root), rank, world_size, session, timeout=timeout)


def object_store(url: str, rank: int, world_size: int, session: str, *, timeout: float = 600) -> PollingAgreement:
    """Agreement through the archive bucket (``s3://bucket/prefix``): objects under prefix/.agree/."""
    from berth.runtime.archive import Archive

    return PollingAgreement(Archive(url).board(".agree"), rank, world_size, session, timeout=timeout)


def default_agreement(world_size: int) -> Agreement:
    """What restore() uses without an explicit hook: none needed for one rank, torch.distributed if up."""
    if world_size <= 1:
        return alone
    try:
        dist = importlib.import_module("torch.distributed")
    except ImportError:
        dist = None
    if dist is not None and dist.is_available() and dist.is_initialized():
        return TorchDistributedAgreement()
    raise BerthError(
        f"restore() with world_size={world_size} needs an agreement so all ranks pick the same step",
        hint="initialise torch.distributed first, or pass agree=shared_directory(...) / object_store(...)",
    )
