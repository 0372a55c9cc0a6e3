"""The one way tests run ``berth``: as a real child process, or in-process for speed.

- ``berth_process(*args, ...)`` (fixture ``run_berth``): ``python -m berth`` in a child process,
  as a user runs it; a ``subprocess.CompletedProcess`` with ``returncode``, ``stdout``, ``stderr``.
- fixture ``berth``: the console entry point called in this process (``CliResult``), for the
  dozens of bad-spec cases that would be slow as processes; test_spec_load.py checks that a real
  process agrees.

Test directories are packages: shared helpers are imported relatively (``from .spec_helpers
import HEADER``, ``from ..conftest import berth_process``), never through sys.path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

BERTH = (sys.executable, "-m", "berth")
"""The command line of the CLI under test: this interpreter, so the venv's berth and no other."""


def berth_process(
    *args: str,
    stdin: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 120,
    via: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``berth *args`` in a child process and wait for it; never raises on a non-zero exit.

    ``env`` is merged over this process's environment; ``via`` is a command that runs berth
    (``setpriv ...`` to drop privileges). ``stdin`` may be bytes, to feed input that is not
    UTF-8; the output is read as ``text=True`` would (strict UTF-8: invalid output fails the test).
    A hung command fails at ``timeout`` seconds instead of hanging the suite.
    """
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [*via, *BERTH, *args],
        input=data,
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, _text(done.stdout), _text(done.stderr))


def _text(raw: bytes) -> str:
    """What ``subprocess.run(text=True)`` reads: UTF-8, strict, universal newlines."""
    return raw.decode().replace("\r\n", "\n").replace("\r", "\n")


@pytest.fixture
def run_berth() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`berth_process`, for tests that take their tools as fixtures."""
    return berth_process


@dataclass(frozen=True)
class CliResult:
    """Exit code and the two output streams of one in-process ``berth`` invocation."""

    code: int
    stdout: str
    stderr: str


RunBerth = Callable[..., CliResult]


def run_main(args: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliResult:
    """Call ``berth.cli.app.main`` (the console script's function) in-process with argv."""
    from berth.cli.app import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["berth", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


@pytest.fixture
def berth(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunBerth:
    """Run the ``berth`` console entry point in-process: ``berth("render", path)``."""
    return lambda *args: run_main(args, capsys, monkeypatch)


# Modules that use this machine's real-node resources: kubelets, containerd, host veths and the one
# kube-proxy slot (iptables chains are host-wide). Under pytest-xdist (`-n 2`, as CI runs) they are one
# unit of work, so one worker runs them in order while the other runs everything else: tests that count
# veths or hold the kube-proxy slot never see another worker's pods, and only one real-pods sandbox runs.
REAL_NODE_MODULES = frozenset(
    {
        "test_datasets_in_pod.py",
        "test_in_pod.py",
        "test_ioprobe.py",
        "test_lifecycle_api_in_pod.py",
        "test_lifecycle_in_pod.py",
        "test_pod_features_in_pod.py",
        "test_restore_archive_in_pod.py",
        "test_sandbox_image.py",
        "test_sandbox_kubelet.py",
        "test_sandbox_units.py",
        "test_volume_usage_in_pod.py",
    }
)


def _unit_of_work(nodeid: str) -> str:
    """The xdist unit a test belongs to: "real-nodes" for REAL_NODE_MODULES, else its file."""
    path = nodeid.split("::", 1)[0]
    folder, _, name = path.rpartition("/")
    return "real-nodes" if folder.endswith("tests/cluster") and name in REAL_NODE_MODULES else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole files to a worker (module fixtures set up once), all real-node modules to one worker.

    pytest-xdist's own `--dist loadgroup` marks do not take effect with this pytest (the worker's
    nodeids never get their @group suffix), so the grouping is done here, on the same scheduler.
    """
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class RealNodesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _unit_of_work(nodeid)

    return RealNodesTogether(config, log)


def pytest_itemcollected(item: pytest.Item) -> None:
    """A module that runs real pods but is not in REAL_NODE_MODULES would race the other worker."""
    if (
        item.path.parent.name == "cluster"
        and item.path.name not in REAL_NODE_MODULES
        and "cluster" in getattr(item, "fixturenames", ())
    ):
        raise pytest.UsageError(f"{item.path.name} runs real pods: add it to REAL_NODE_MODULES in tests/conftest.py")
