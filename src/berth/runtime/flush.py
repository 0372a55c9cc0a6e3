"""Flush on request: ``berth backup`` asks every rank, through the archive itself, to have its newest step there.

The request travels through the object store the ranks already write to, not through the
Kubernetes API: the backup needs no ``pods/exec`` (which would let it run anything in the pods)
and the training pods need no API token. ``berth backup`` puts
``<prefix>/.berth/flush/request.json`` (a new id each time); every CheckpointManager with an
archive polls that one object (``BERTH_FLUSH_POLL_S``, default 10 s, ``0`` turns it off; one GET
per poll and rank), waits until every step it committed is uploaded (at most
``BERTH_FLUSH_TIMEOUT_S``, default 300 s) and answers ``<prefix>/.berth/flush/<id>/rank-R.json``
with its newest committed step and whether it is archived. The answers are what the backup reports
per rank; a rank that does not answer in time (no berth CheckpointManager in that trainer, uploads
failing, the pod down) is a warning.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from berth.runtime.archive import Archive, ArchiveError
from berth.runtime.store import rank_dirname

log = logging.getLogger("berth.checkpoint")
BOARD = ".berth/flush"
REQUEST = "request.json"
POLL_S = 10.0
TIMEOUT_S = 300.0


class _Flushable(Protocol):
    """What the watcher needs of a CheckpointManager."""

    rank: int

    def steps(self) -> list[int]: ...
    def wait_archived(self, timeout: float | None = None) -> bool: ...


def _answer_name(request_id: str, rank: int) -> str:
    return f"{request_id}/{rank_dirname(rank)}.json"


class Watcher:
    """A daemon thread of the CheckpointManager: polls for a flush request and answers it."""

    def __init__(self, archive: Archive, manager: _Flushable, *, poll_s: float, timeout_s: float) -> None:
        self.board = archive.board(BOARD)
        self.manager, self.poll_s, self.timeout_s = manager, poll_s, timeout_s
        self._stop = threading.Event()
        self._answered: str | None = None
        self._thread = threading.Thread(target=self._loop, name="berth-flush", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not self._stop.wait(self.poll_s):
            try:
                raw = self.board.get(REQUEST)
                request_id = str(json.loads(raw)["id"]) if raw else None
                if request_id and request_id != self._answered:
                    self._answer(request_id)
            except (BotoCoreError, ClientError, ValueError, KeyError, OSError) as err:
                log.warning("flush request: %s (tried again in %.0fs)", err, self.poll_s)

    def _answer(self, request_id: str) -> None:
        name = _answer_name(request_id, self.manager.rank)
        if self.board.get(name) is not None:  # answered before this process started (a restart)
            self._answered = request_id
            return
        archived = self.manager.wait_archived(self.timeout_s)
        steps = self.manager.steps()
        body = {
            "id": request_id,
            "rank": self.manager.rank,
            "step": steps[-1] if steps else None,
            "archived": archived,
            "error": None if archived else f"uploads still pending after {self.timeout_s:.0f}s",
        }
        self.board.put(name, json.dumps(body).encode())
        self._answered = request_id
        log.info("flush %s: step %s archived=%s", request_id, body["step"], archived)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def watch(archive: Archive, manager: _Flushable, environ: Mapping[str, str]) -> Watcher | None:
    """Start the watcher unless ``BERTH_FLUSH_POLL_S`` is 0."""
    poll = float(environ.get("BERTH_FLUSH_POLL_S") or POLL_S)
    if poll <= 0:
        return None
    return Watcher(archive, manager, poll_s=poll, timeout_s=float(environ.get("BERTH_FLUSH_TIMEOUT_S") or TIMEOUT_S))


@dataclass
class RankFlush:
    """One rank's answer, or why there is none."""

    rank: int
    step: int | None = None
    archived: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.archived and self.step is not None

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "step": self.step, "archived": self.archived, "error": self.error}


def flush_all(
    url: str,
    world_size: int,
    *,
    timeout_s: float,
    archive: Archive | None = None,
    progress: Callable[[RankFlush], None] | None = None,
    poll_s: float = 1.0,
) -> list[RankFlush]:
    """Ask every rank to flush and collect the answers; ranks silent at ``timeout_s`` get an error.

    Raises ArchiveError when the request cannot even be written (store unreachable, credentials).
    """
    archive = archive or Archive(url)
    board = archive.board(BOARD)
    request_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        board.put(REQUEST, json.dumps({"id": request_id, "worldSize": world_size}).encode())
    except (BotoCoreError, ClientError) as err:
        raise ArchiveError(f"{url}: writing the flush request failed: {err}", "check AWS_* here") from err
    found: dict[int, RankFlush] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        for rank in range(world_size):
            if rank in found:
                continue
            try:
                raw = board.get(_answer_name(request_id, rank))
            except (BotoCoreError, ClientError):
                raw = None
            if raw is not None:
                got = json.loads(raw)
                found[rank] = RankFlush(rank, got.get("step"), bool(got.get("archived")), got.get("error"))
                if progress is not None:
                    progress(found[rank])
        if len(found) == world_size or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    silent = (
        f"no answer within {timeout_s:.0f}s: is its trainer running with berth's CheckpointManager and the archive?"
    )
    return [found.get(rank) or RankFlush(rank, error=silent) for rank in range(world_size)]
