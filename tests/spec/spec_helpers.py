"""Shared by the spec tests: where things are, the spec header, the shape of a CLI result."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
DATA = Path(__file__).resolve().parent / "data"

# Every bad spec in the tests is this header plus a few lines of ``spec:`` (line 5 on).
HEADER = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: t}
spec:
"""


@dataclass(frozen=True)
class CliResult:
    """Exit code and the two output streams of one ``berth`` invocation."""

    code: int
    stdout: str
    stderr: str


RunBerth = Callable[..., CliResult]


def run_main(args: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliResult:
    """Call ``berth.cli.app.main`` (the console script's function) in-process with argv.

    In-process keeps dozens of bad specs fast; test_spec_load.py runs a sample through a real
    ``python -m berth`` process to prove the two agree.
    """
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
