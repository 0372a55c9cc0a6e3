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
