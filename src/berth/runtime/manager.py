"""CheckpointManager: the one object a training loop talks to.

save() snapshots the state (a copy in host memory, or a forked child's copy-on-write view of
it: :mod:`berth.runtime.forksnap`) and returns; a writer commits it atomically, prunes old
steps and hands the step to an uploader thread when an archive is configured.
restore() finds the newest step every rank has and that verifies, falling back step by step
(and to the archive when the volume is empty) in lock-step with the other ranks.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Literal

from berth.errors import BerthError, UsageError
from berth.runtime import flush, forksnap, metrics
from berth.runtime.agree import Agreement, default_agreement
from berth.runtime.archive import Archive, ArchiveError, Progress
from berth.runtime.manifest import META_NAME, CorruptCheckpoint, Manifest
from berth.runtime.safetensors_io import CHUNK_SIZE, MAP_READS, read_verified
from berth.runtime.shard import Prepared, Staging, fetch_shard, load_shard, prepare, write_shard
from berth.runtime.store import LocalStore, read_complete, read_manifest, retained
from berth.runtime.tree import tensor_kinds

log = logging.getLogger("berth.checkpoint")

Snapshot = Literal["copy", "fork"]
SNAPSHOTS: tuple[Snapshot, ...] = ("copy", "fork")


def _env_int(environ: Mapping[str, str], *names: str, default: int) -> int:
    for name in names:
        raw = environ.get(name)
        if raw:
            try:
                return int(raw)
            except ValueError:
                raise UsageError(f"environment variable {name}={raw!r} is not an integer") from None
    return default


def _holds_jax(shard: Path, manifest: Manifest) -> bool:
    """Whether the shard's state has JAX arrays (its skeleton says so): those restore from a
    mapping of the file (see ``safetensors_io.MAP_READS``); a state without them is read."""
    raw = read_verified(str(shard / META_NAME), manifest.file(META_NAME)).tobytes()
    try:
        kinds = tensor_kinds(json.loads(raw)["skeleton"])
    except (ValueError, KeyError, TypeError):
        return False  # load_shard reports what is wrong with it
    return "jax" in kinds.values()


class CheckpointManager:
    """Crash-safe, asynchronous, tiered checkpoints of one rank.

    ``rank``/``world_size`` default to RANK or POD_INDEX / WORLD_SIZE or BERTH_REPLICAS;
    ``directory`` to BERTH_CHECKPOINT_DIR; ``archive`` (``s3://bucket/prefix``) to
    BERTH_ARCHIVE_URL. Locally the newest ``keep_last`` steps and every ``keep_every``-th
    step are kept, and a step is never deleted before its upload finished.

    ``snapshot`` (default BERTH_CHECKPOINT_SNAPSHOT, else ``copy``) is how an async save
    of mutable arrays is isolated from the training loop: ``copy`` copies them into host
    staging memory before ``save()`` returns; ``fork`` forks a child that writes its
    copy-on-write view of them (``save()`` returns after the fork; see docs/checkpoints.md
    for when that is better, and :mod:`berth.runtime.forksnap`). ``fork`` is not used while
    JAX is imported (it copies then, and says so once).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        keep_last: int | None = 3,
        keep_every: int | None = None,
        archive: str | None = None,
        archive_keep_last: int | None = None,
        archive_keep_every: int | None = None,
        async_save: bool = True,
        agree: Agreement | None = None,
        preflight: bool = True,
        metrics_port: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        snapshot: Snapshot | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        directory = directory or env.get("BERTH_CHECKPOINT_DIR")
        if not directory:
            raise UsageError("no checkpoint directory", hint="pass one or set BERTH_CHECKPOINT_DIR")
        if keep_last is not None and keep_last < 1:
            raise UsageError(f"keep_last={keep_last} must be at least 1 (or None to keep every step)")
        self.rank = rank if rank is not None else _env_int(env, "RANK", "POD_INDEX", default=0)
        self.world_size = (
            world_size if world_size is not None else _env_int(env, "WORLD_SIZE", "BERTH_REPLICAS", default=1)
        )
        if not 0 <= self.rank < self.world_size:
            raise UsageError(f"rank {self.rank} is outside world_size {self.world_size}")
        self.keep_last, self.keep_every = keep_last, keep_every
        self.archive_keep_last, self.archive_keep_every = archive_keep_last, archive_keep_every
        self.async_save, self.preflight, self.chunk_size = async_save, preflight, chunk_size
        chosen = snapshot or env.get("BERTH_CHECKPOINT_SNAPSHOT") or "copy"
        if chosen not in SNAPSHOTS:
            raise UsageError(f"snapshot={chosen!r} is not one of {', '.join(SNAPSHOTS)}")
        self.snapshot: Snapshot = "fork" if chosen == "fork" else "copy"
        self._fork_refused: str | None = None  # the reason, once said
        self.snapshot_pid: int | None = None
        """The pid of the fork snapshot child writing now, else None."""
        self._agree = agree
        url = archive or env.get("BERTH_ARCHIVE_URL") or None
        self.archive = Archive(url) if url else None
        metrics.serve(metrics_port)  # before taking the lock, so a bad port leaves nothing held
        self.store = LocalStore(Path(directory), self.rank)
        self.store.open()

        self._writer = ThreadPoolExecutor(1, thread_name_prefix="berth-save")
        self._pending: Future[None] | None = None
        self._staging = Staging()
        self._prune_lock = threading.Lock()
        self._uploads: queue.Queue[int | None] = queue.Queue()
        self._unarchived: set[int] = set()
        self._archived_cv = threading.Condition()
        self._stop = threading.Event()
        self._uploader: threading.Thread | None = None
        self._flush: flush.Watcher | None = None
        if self.archive is not None:
            for step in self.store.steps():
                if not self.store.is_archived(step):
                    self._queue_upload(step)
            self._uploader = threading.Thread(target=self._upload_loop, name="berth-upload", daemon=True)
            self._uploader.start()
            self._flush = flush.watch(self.archive, self, env)  # answers `berth backup`'s flush requests
        self._update_lag()

    # -- saving ---------------------------------------------------------------------------------

    def save(self, step: int, state: object, *, blocking: bool | None = None) -> None:
        """Checkpoint ``state`` as ``step``; returns once it is copied to host memory (async mode).

        Waits for the previous save first (one in flight: a save while a fork snapshot's
        child still writes waits for it) and raises its error, if any. With ``blocking``
        (or ``async_save=False``) it returns after the commit, and writes straight from the
        caller's arrays without the host copy.
        """
        if step < 0:
            raise UsageError(f"step {step} must be >= 0")
        self.wait()
        started = time.perf_counter()
        sync = blocking if blocking is not None else not self.async_save
        check = self.store.check_space if self.preflight else None
        if not sync and self._forks():
            prepared = prepare(state, None, check)  # views of the arrays: the child's snapshot holds them
            if self._fork(step, prepared, started):
                return
        prepared = prepare(state, None if sync else self._staging, check)
        if sync:
            self._write(step, prepared, started)
        else:
            self._pending = self._writer.submit(self._write, step, prepared, started)

    def _forks(self) -> bool:
        """Whether async saves use fork snapshots now (asked for, and safe in this process)."""
        if self.snapshot != "fork":
            return False
        why = forksnap.unavailable()
        if why is not None and self._fork_refused != why:
            self._fork_refused = why
            log.warning("snapshot='fork' is not used: %s; async saves copy instead", why)
        return why is None

    def _fork(self, step: int, prepared: Prepared, started: float) -> bool:
        """Fork the snapshot child from the writer thread; False when the kernel refuses the fork.

        The writer thread forks (not the caller's): PR_SET_PDEATHSIG follows the forking
        thread, and the writer lives as long as the manager.
        """
        forked: Future[int] = Future()
        release = forksnap.PageRelease([t.data for t in prepared.tensors])
        job = partial(
            write_shard,
            self.store,
            step,
            self.world_size,
            prepared,
            chunk_size=self.chunk_size,
            threads=False,
            copied=release,
        )
        pending = self._writer.submit(self._fork_write, step, job, started, forked)
        try:
            forked.result()
        except OSError as err:
            pending.result()
            log.warning("fork snapshot refused by the kernel (%s); copying this save instead", err)
            return False
        self._pending = pending
        return True

    def _fork_write(self, step: int, job: partial[Manifest], started: float, forked: Future[int]) -> None:
        try:
            child = forksnap.start(job)
        except BaseException as err:
            forked.set_exception(err)
            return
        self.snapshot_pid = child.pid
        forked.set_result(child.pid)
        try:
            forksnap.wait(child)
        except forksnap.SnapshotError:
            metrics.FAILURES.labels("save").inc()
            self.store.remove_stale()  # a child killed mid-write leaves its temporary directory
            raise
        except BaseException:
            metrics.FAILURES.labels("save").inc()
            raise
        finally:
            self.snapshot_pid = None
        self._committed(step, read_manifest(self.store.shard_dir(step)), started)

    def wait(self) -> None:
        """Block until the save in flight is committed; raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(self, step: int, prepared: Prepared, started: float) -> None:
        try:
            manifest = write_shard(self.store, step, self.world_size, prepared, chunk_size=self.chunk_size)
        except BaseException:
            metrics.FAILURES.labels("save").inc()
            raise
        self._committed(step, manifest, started)

    def _committed(self, step: int, manifest: Manifest, started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics.SAVE_DURATION.observe(elapsed)
        metrics.record("save", manifest.nbytes, elapsed)
        metrics.committed(step)
        if self.archive is not None:
            self._queue_upload(step)
        self.prune()

    def steps(self) -> list[int]:
        """Steps of this rank committed on the local volume, oldest first."""
        return self.store.steps()

    def prune(self) -> list[int]:
        """Apply local retention; steps whose upload has not finished are kept. Returns removed steps."""
        removed = []
        with self._prune_lock:
            steps = self.store.steps()
            keep = retained(steps, self.keep_last, self.keep_every)
            for step in steps:
                if step in keep or (self.archive is not None and not self.store.is_archived(step)):
                    continue
                self.store.remove(step)
                removed.append(step)
        return removed

    # -- archive tier ---------------------------------------------------------------------------

    def _queue_upload(self, step: int) -> None:
        with self._archived_cv:
            self._unarchived.add(step)
        self._uploads.put(step)
        self._update_lag()

    def _update_lag(self) -> None:
        with self._archived_cv:
            metrics.ARCHIVE_LAG.set(len(self._unarchived))

    def _upload_loop(self) -> None:
        while (step := self._uploads.get()) is not None:
            delay = 0.5
            while not self._stop.is_set():
                try:
                    self._upload(step)
                    break
                except (ArchiveError, CorruptCheckpoint, OSError) as err:
                    metrics.FAILURES.labels("upload").inc()
                    log.warning("upload of step %d failed, retrying in %.1fs: %s", step, delay, err)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 30.0)
            with self._archived_cv:
                self._unarchived.discard(step)
                self._archived_cv.notify_all()
            self._update_lag()

    def _upload(self, step: int) -> None:
        assert self.archive is not None
        shard = self.store.shard_dir(step)
        if not shard.exists():  # re-saved or pruned by hand meanwhile: nothing to copy
            return
        started = time.perf_counter()
        manifest = read_manifest(shard)
        sent = self.archive.upload_shard(shard, manifest)
        self.store.mark_archived(step)
        metrics.record("upload", sent, time.perf_counter() - started)
        self.prune()
        self._prune_archive()

    def _prune_archive(self) -> None:
        assert self.archive is not None
        if self.archive_keep_last is None and self.archive_keep_every is None:
            return
        steps = self.archive.steps(self.rank)
        keep = retained(steps, self.archive_keep_last, self.archive_keep_every)
        for step in steps:
            if step not in keep:
                self.archive.delete_shard(step, self.rank)

    def wait_archived(self, timeout: float | None = None) -> bool:
        """Block until every committed step is in the archive; False on timeout."""
        self.wait()
        with self._archived_cv:
            return self._archived_cv.wait_for(lambda: not self._unarchived, timeout)

    # -- restoring ------------------------------------------------------------------------------

    def restore(self, step: int | None = None) -> tuple[int | None, object]:
        """The newest step complete on every rank that verifies, and its state; (None, None) if none.

        A shard that fails verification is skipped with a warning and all ranks fall back
        together to the next candidate. Steps only in the archive are downloaded first.
        """
        self.wait()
        started = time.perf_counter()
        agree = self._agree or default_agreement(self.world_size)
        local: dict[int, Manifest] = {}
        for s in self.store.steps():
            try:
                local[s] = read_complete(self.store.shard_dir(s))
            except CorruptCheckpoint as err:
                log.warning("step %d rank %d is damaged, skipping it: %s", s, self.rank, err.message)
        remote: set[int] = set()
        if self.archive is not None:
            try:
                remote = set(self.archive.steps(self.rank))
            except ArchiveError as err:
                log.warning("archive unavailable, restoring from the local volume only: %s", err.message)
        offer = set(local) | remote
        if step is not None:
            offer &= {step}
        for candidate in agree(sorted(offer)):
            loaded = self._load(candidate, local.get(candidate), candidate in remote)
            everyone = agree([candidate] if loaded is not None else []) == [candidate]
            if everyone and loaded is not None:
                elapsed = time.perf_counter() - started
                metrics.RESTORE_DURATION.observe(elapsed)
                metrics.record("restore", loaded[1], elapsed)
                return candidate, loaded[0]
            if loaded is not None:
                log.warning("step %d: another rank cannot load it, falling back with the others", candidate)
        return None, None

    def _load(self, step: int, manifest: Manifest | None, in_archive: bool) -> tuple[object, int] | None:
        """(state, bytes) of this rank's shard of ``step``, downloading it if needed; None if unusable."""
        if manifest is not None:
            try:
                return self._loaded(step, manifest)
            except CorruptCheckpoint as err:
                metrics.FAILURES.labels("restore").inc()
                log.warning("step %d rank %d fails verification, skipping it: %s", step, self.rank, err.message)
        if not in_archive or self.archive is None:
            return None
        try:
            manifest = self.fetch(step)
            return self._loaded(step, manifest)
        except (ArchiveError, CorruptCheckpoint, OSError) as err:
            metrics.FAILURES.labels("download").inc()
            log.warning("step %d rank %d from the archive is unusable: %s", step, self.rank, err)
            return None

    def _loaded(self, step: int, manifest: Manifest) -> tuple[object, int]:
        shard = self.store.shard_dir(step)
        token = MAP_READS.set(_holds_jax(shard, manifest))  # JAX arrays adopt the file's pages
        try:
            state, need = load_shard(shard, manifest)
        finally:
            MAP_READS.reset(token)
        if self.async_save and not self._forks():  # the first save after a restart copies into
            self._staging.reserve(need)  # memory faulted in by then (a fork snapshot copies nothing)
        return state, manifest.nbytes

    def reserve(self, nbytes: int) -> None:
        """Fault in ``nbytes`` of staging memory for async saves now, on a background thread.

        ``restore()`` does it by itself (it knows the size); a fresh start that knows its state
        size calls this early so its first ``save()`` does not pay for page faults. An async
        save uses about the bytes of its mutable tensors (numpy, torch); JAX arrays need none.
        """
        self._staging.reserve(nbytes)

    def fetch(self, step: int, progress: Progress | None = None) -> Manifest:
        """Download this rank's shard of ``step`` from the archive, verify it, and commit it locally.

        Raises CorruptCheckpoint (nothing committed) when the archive's copy fails verification.
        """
        if self.archive is None:
            raise BerthError("no archive configured", hint="pass archive= or set BERTH_ARCHIVE_URL")
        started = time.perf_counter()
        with self._prune_lock:
            manifest = self.archive.manifest(step, self.rank)
            fetch_shard(self.archive, self.store, manifest, progress)
        metrics.record("download", manifest.nbytes, time.perf_counter() - started)
        return manifest

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self, *, wait_archive: float | None = 600) -> None:
        """Finish the save in flight, give pending uploads ``wait_archive`` seconds, release the lock.

        Steps still not uploaded stay on the volume and are uploaded by the next manager.
        """
        try:
            self.wait()
            waits = self._uploader is not None and (wait_archive is None or wait_archive > 0)
            if waits and not self.wait_archived(wait_archive):
                with self._archived_cv:
                    pending = sorted(self._unarchived)
                log.warning("closing with steps %s not yet archived; the next start uploads them", pending)
        finally:
            # Also when the last save failed: an uploader left running would prune the volume
            # after the lock is released, under the feet of the next manager.
            if self._flush is not None:
                self._flush.stop()
            if self._uploader is not None:
                self._stop.set()
                self._uploads.put(None)
                self._uploader.join()
            self._writer.shutdown(wait=True)
            self.store.close()

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(wait_archive=0 if exc is not None else 600)
