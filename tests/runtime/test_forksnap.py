"""Fork snapshots (``snapshot="fork"``): a child process writes the copy-on-write view of the
arrays at ``save()`` time, commits it, and dies with the trainer.

The bodies run in fresh interpreters (``_fresh``): fork snapshots are refused while JAX is
imported, and other test files of the same pytest worker import it. The parent SIGKILLed
mid-write is a real SIGKILL of a real trainer process; the full disk is a real 4 MiB tmpfs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from berth.checkpoint import CheckpointManager
from berth.errors import BerthError
from berth.runtime import forksnap

from .ckpt_child import same
from .conftest import child

ROOT = Path(__file__).resolve().parents[2]


def _fresh(body: str, *args: str) -> str:
    """Run ``body(*args)`` of this module in a fresh interpreter (no JAX imported); its stdout."""
    code = (
        "import sys; from tests.runtime import test_forksnap as t; "
        f"assert 'jax' not in sys.modules; t.{body}(*sys.argv[1:]); print('done')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.endswith("done\n"), done.stderr[-3000:]
    return done.stdout


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


@contextlib.contextmanager
def _training(*arrays: np.ndarray[Any, Any]) -> Iterator[None]:
    """Another thread updates ``arrays`` in place without pause while the block runs."""
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            for a in arrays:
                np.add(a, 1.0, out=a)

    thread = threading.Thread(target=train)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- bodies run in fresh interpreters -------------------------------------------------------------


def isolation(directory: str) -> None:
    """Arrays overwritten at once after save(), by this thread and by another one that never
    stops (the fork happens in a process with threads), never reach the checkpoint; nothing is
    copied into staging memory."""
    rng = np.random.default_rng(7)
    big = rng.random(6 << 20)  # 48 MiB
    base = rng.random((64, 1000))
    state = {"big": big, "small": rng.integers(0, 9, 1000), "view": base[::2, 3:900:3], "t": base.T, "n": 5}
    expected = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    with CheckpointManager(Path(directory), snapshot="fork") as mgr:
        for step in (1, 2):
            mgr.save(step, state)
            pid = mgr.snapshot_pid  # None only if the child were done already (48 MiB: it is not)
            big[:] = -1.0
            base[:] = -2.0
            state["small"][:] = -3
            with _training(big, np.zeros(1 << 20)):
                mgr.wait()
            assert pid is not None and pid != os.getpid() and mgr.snapshot_pid is None and _gone(pid)
            assert same(mgr.restore(step=step)[1], expected)
            big[:] = expected["big"]
            base[:] = np.array(expected["t"]).T
            state["small"][:] = expected["small"]
        assert mgr._staging.size == 0  # no staging copy was made


def killed_child(directory: str) -> None:
    """A snapshot child killed mid-write (as the OOM killer would) fails that save with its
    signal; its temporary directory is removed and the next save works."""
    state = {"w": np.ones(32 << 20, np.float32)}  # 128 MiB: far longer to write than to kill
    with CheckpointManager(Path(directory), snapshot="fork") as mgr:
        mgr.save(1, state)
        pid = mgr.snapshot_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        try:
            mgr.wait()
        except forksnap.SnapshotError as err:
            assert f"pid {pid}" in err.message and "SIGKILL" in err.message, err.message
        else:
            raise AssertionError("the save of a killed snapshot writer succeeded")
        assert mgr.steps() == [] and _leftovers(Path(directory)) == []
        mgr.save(2, state)
        mgr.wait()
        assert mgr.steps() == [2]


def full_disk(directory: str) -> None:
    """ENOSPC inside the child comes back as the same message a thread writer gives."""
    root = Path(directory)
    with CheckpointManager(root, keep_last=5, preflight=False, snapshot="fork") as mgr:
        mgr.save(1, {"w": np.full(1 << 18, 1, np.float32)}, blocking=True)
        mgr.save(2, {"w": np.full(1 << 18, 2, np.float32)}, blocking=True)
        mgr.save(3, {"w": np.full(1 << 19, 3, np.float32)})
        try:
            mgr.wait()
        except BerthError as err:
            print(err.message)
        else:
            raise AssertionError("a save onto a full volume succeeded")
        assert _leftovers(root) == [] and mgr.steps() == [1, 2]
        assert mgr._staging.size == 0  # the child wrote it: a copying save would have staged it


def aliased(directory: str) -> None:
    """Leaves that share memory (one array twice, a view of another) are written whole: the
    child gives back only the pages of sources nothing else reads."""
    rng = np.random.default_rng(3)
    x, y, z = (rng.random(1 << 20) for _ in range(3))  # 8 MiB each
    state = {"a": x, "b": x, "c": y, "d": y[1000:], "z": z}
    expected = {k: v.copy() for k, v in state.items()}
    with CheckpointManager(Path(directory), snapshot="fork") as mgr:
        mgr.save(1, state)
        x[:] = 0
        mgr.wait()
        assert same(mgr.restore()[1], expected) and mgr._staging.size == 0


def torch_isolation(directory: str) -> None:
    """The same under torch, whose intra-op thread pool exists when the process forks: tensors
    updated in place (a big one through torch's threads) right after save() keep their values."""
    import torch

    torch.set_num_threads(2)
    w = torch.arange(8 << 20, dtype=torch.float32)  # 32 MiB
    h = torch.ones(1000, dtype=torch.bfloat16)
    expected = {"w": w.clone(), "h": h.clone()}
    with CheckpointManager(Path(directory), snapshot="fork") as mgr:
        mgr.save(1, {"w": w, "h": h})
        w.mul_(-1.0)
        h.add_(1)
        mgr.wait()
        back = mgr.restore()[1]
        assert mgr._staging.size == 0
    assert isinstance(back, dict) and all(torch.equal(back[k], v) for k, v in expected.items())


# -- the tests ------------------------------------------------------------------------------------


def test_mutations_after_save_never_reach_a_fork_snapshot(tmp_path: Path) -> None:
    _fresh("isolation", str(tmp_path / "c"))


def test_leaves_sharing_memory_are_written_whole(tmp_path: Path) -> None:
    _fresh("aliased", str(tmp_path / "c"))


def test_only_big_sources_nothing_else_reads_give_their_pages_back() -> None:
    x, y, z = np.zeros(1 << 20), np.zeros(1 << 20), np.zeros(1 << 20)
    blobs = [x.data, x.data, y.data, y[1000:].data, z.data, np.zeros(1000).data, memoryview(b"")]
    assert forksnap.PageRelease(blobs).sources == 1  # z alone
    assert forksnap.PageRelease([x.data, y.data, z[::4].copy().data]).sources == 2  # 2 MiB: too small


def test_fork_snapshots_of_torch_tensors(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    _fresh("torch_isolation", str(tmp_path / "c"))


def test_a_killed_snapshot_writer_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    _fresh("killed_child", str(tmp_path / "c"))


def test_a_full_disk_in_the_child_is_reported_to_the_parent_with_the_path(small_tmpfs: Path) -> None:
    out = _fresh("full_disk", str(small_tmpfs / "c"))
    assert f"not enough space in {small_tmpfs / 'c'}: the checkpoint needs" in out, out


def _subreaper(on: bool) -> None:
    """Make this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), so a
    test can collect the exit status of its child's child once that child is killed."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, int(on), 0, 0, 0) == 0, os.strerror(ctypes.get_errno())


def test_a_sigkilled_trainer_never_commits_later_and_leaves_no_process(tmp_path: Path) -> None:
    """The trainer is SIGKILLed while its snapshot child writes (the child is stopped there so the
    moment is certain, then let go): the child dies with it, nothing is committed, ever."""
    root = tmp_path / "c"
    _subreaper(True)
    try:
        trainer = child("fork-hold", str(root))
        assert trainer.stdout is not None
        line = trainer.stdout.readline().split()
        assert line[:1] == ["forked"], (line, trainer.stderr.read() if trainer.stderr else "")
        snap = int(line[1])
        os.kill(snap, signal.SIGSTOP)  # mid-write: 128 MiB take far longer than this line
        assert not (root / "step-000000000001").exists()
        trainer.kill()
        trainer.wait(timeout=30)
        # Let it go: without PR_SET_PDEATHSIG it would now finish and commit. Stopped before its
        # prctl, it finds itself orphaned and exits; stopped after, the SIGKILL already took it.
        os.kill(snap, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while (reaped := os.waitpid(snap, os.WNOHANG))[0] == 0:  # an orphan now: ours to reap
            assert time.monotonic() < deadline, f"snapshot child {snap} outlived its trainer"
            time.sleep(0.02)
        status = reaped[1]
        died = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert died or os.waitstatus_to_exitcode(status) == forksnap.EXIT_ORPHANED, status
        trainer.communicate(timeout=30)
    finally:
        _subreaper(False)
    time.sleep(0.5)
    assert not (root / "step-000000000001").exists()
    with CheckpointManager(root, snapshot="fork") as mgr:  # start-up removes the child's temporaries
        assert mgr.restore() == (None, None)
        assert _leftovers(root) == []


def test_fork_is_refused_while_jax_is_imported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("jax")
    state = {"w": np.arange(1 << 20, dtype=np.float32)}
    with CheckpointManager(tmp_path / "c", snapshot="fork") as mgr:
        mgr.save(1, state)
        assert mgr.snapshot_pid is None
        state["w"][:] = 0  # copied before save() returned
        mgr.wait()
        assert mgr._staging.size > 0
        assert np.array_equal(mgr.restore()[1]["w"], np.arange(1 << 20, dtype=np.float32))  # type: ignore[index]
    assert "JAX is imported" in caplog.text


def test_a_bad_snapshot_mode_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(BerthError, match="snapshot='cow' is not one of copy, fork"):
        CheckpointManager(tmp_path / "c", snapshot="cow")  # type: ignore[arg-type]
    with pytest.raises(BerthError, match="is not one of"):
        CheckpointManager(tmp_path / "c", environ={"BERTH_CHECKPOINT_SNAPSHOT": "forks"})
