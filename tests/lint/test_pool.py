"""The forked lint workers (``-j`` above 1): the same findings as one process, and a failing worker is an error.

Workers are plain forks of the linting process that claim chunks of files through shared memory
and answer over pipes (``engine._Worker``); these tests use real processes, no mock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth.lint import engine
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.loader import LoadedFile

from .test_grouping import PDB, WORKLOAD


def _tree(root: Path, apps: int = 40) -> Path:
    """Apps of two files each: cross-object findings (the PDB blocks eviction) land in files of every chunk."""
    for i in range(apps):
        app = root / f"app{i:02d}"
        app.mkdir(parents=True)
        (app / "sts.yaml").write_text(WORKLOAD)
        (app / "pdb.yaml").write_text(PDB)
    return root


@pytest.mark.parametrize("jobs", [2, 3])
def test_workers_find_and_place_what_one_process_does(tmp_path: Path, jobs: int) -> None:
    tree = _tree(tmp_path)
    one = [f.to_json() for f in lint_paths([str(tree)], LintOptions(jobs=1)).findings]
    many = [f.to_json() for f in lint_paths([str(tree)], LintOptions(jobs=jobs)).findings]
    assert many == one
    cross = [f for f in one if f["rule"] == "pdb-blocks-eviction"]
    assert len(cross) == 40 and all(f["line"] > 0 for f in cross)


@pytest.fixture
def pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process ids of the workers the test's lint forks, in order."""
    forked: list[int] = []
    start = engine._Worker.__init__

    def started(self: engine._Worker, *args: object) -> None:
        start(self, *args)  # type: ignore[arg-type]
        forked.append(self.pid)

    monkeypatch.setattr(engine._Worker, "__init__", started)
    return forked


def test_a_failing_worker_is_an_error_naming_its_cause_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pids: list[int]
) -> None:
    tree = _tree(tmp_path)
    parent = os.getpid()
    lint_file = engine._Linter.lint_file

    def broken(self: engine._Linter, path: str, keep: dict[str, LoadedFile] | None = None) -> object:
        if os.getpid() != parent:
            raise ValueError("worker broke on " + path)
        return lint_file(self, path, keep)

    monkeypatch.setattr(engine._Linter, "lint_file", broken)
    with pytest.raises(RuntimeError, match=r"a lint worker process failed:(?s:.)*ValueError: worker broke on"):
        lint_paths([str(tree)], LintOptions(jobs=2))
    assert len(pids) == 1
    with pytest.raises(ChildProcessError):  # the worker was waited for: no zombie is left
        os.waitpid(pids[0], os.WNOHANG)


@pytest.mark.timeout(120)
def test_a_worker_killed_while_it_holds_the_chunk_lock_is_an_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pids: list[int]
) -> None:
    """The lock is a byte in a pipe: a worker SIGKILLed after taking it never gives it back. The parent,
    waiting for it, notices the dead worker, ends the others and says so (it waited forever before)."""
    tree = _tree(tmp_path)
    parent = os.getpid()
    claim = engine._Chunks.claim

    def killed_holding_it(self: engine._Chunks, *, front: bool, check: object = None) -> int | None:
        if os.getpid() != parent:
            os.read(self._take, 1)  # take the byte, as claim does ...
            os.kill(os.getpid(), signal.SIGKILL)  # ... and die before giving it back
        return claim(self, front=front, check=check)  # type: ignore[arg-type]

    monkeypatch.setattr(engine._Chunks, "claim", killed_holding_it)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="a lint worker process ended without an answer"):
        lint_paths([str(tree)], LintOptions(jobs=3))
    assert time.monotonic() - began < 30
    assert len(pids) == 2
    for pid in pids:  # both were waited for (the live one was killed): no process or zombie is left
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_workers_with_nothing_to_place_end(tmp_path: Path) -> None:
    """Three processes, no cross-object finding anywhere: no worker is asked to place any, each sees the
    parent's end of input and exits (a worker's inherited copy of a sibling's pipe once kept that sibling
    waiting, and the run hung)."""
    for i in range(80):
        (tmp_path / f"cm{i}.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n")
    out = subprocess.run(
        [sys.executable, "-m", "berth", "lint", "-j", "3", "-f", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "[]", "")
