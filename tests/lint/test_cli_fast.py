"""``berth lint`` started without typer (``berth.cli.lint_fast``) means what typer makes of the same words.

Every form the fast parser takes must give the arguments typer's parser gives; every other form goes
to typer, which answers it as before. The whole command through ``python -m berth`` (this entry
point) prints the same report and exits with the same code as through typer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.cli.lint_fast import LINT_FLAGS, parse_lint

BAD = """apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: PVC_NAME
spec:
  accessModes: [ReadWriteOnce]
"""


def _typer_lint() -> Any:
    import typer.main

    from berth.cli.app import app

    return typer.main.get_command(app).commands["lint"]  # type: ignore[attr-defined]


def _typer_kwargs(args: list[str]) -> dict[str, Any]:
    """What typer's parser makes of ``berth lint ARGS``, in run_lint's terms."""
    params = dict(_typer_lint().make_context("lint", list(args)).params)
    assert not params.pop("list_rules") and params.pop("explain") is None
    params["fmt"] = params["fmt"].value
    params["paths"], params["schema_dir"] = list(params["paths"]), list(params["schema_dir"] or [])
    return params


def test_the_fast_parser_knows_the_flags_typer_knows_but_the_two_that_print_no_report() -> None:
    flags = {opt for param in _typer_lint().params for opt in param.opts if opt.startswith("-")}
    assert set(LINT_FLAGS) == flags - {"--list-rules", "--explain"}


FAST = [
    ["manifests/"],
    ["-j", "2", "-f", "json", "/tmp/corpus"],  # what benchmarks/lint_corpus.py runs
    ["a.yaml", "b/", "-", "--schema-only", "-o", "sarif"],
    ["--format=junit", "x", "--fail-on", "error", "--kubernetes-version", "1.31", "--group-by", "none"],
    ["--schema-dir", "crds/", "--schema-dir=more", "--config", "c.yaml", "--jobs=3", "x"],
]


@pytest.mark.parametrize("args", FAST)
def test_forms_the_fast_parser_takes_mean_what_typer_makes_of_them(args: list[str]) -> None:
    assert parse_lint(args) == _typer_kwargs(args)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["x", "--list-rules"],
        ["--explain", "fsgroup-missing"],
        ["x", "-f", "yaml"],
        ["x", "-f=json"],  # click reads "=json"
        ["x", "-fjson"],
        ["x", "-j"],
        ["x", "-j", "two"],
        ["x", "-j", "-1"],
        ["x", "-j", "²"],
        ["x", "-o", "json", "-o", "text"],
        ["x", "--schema-only", "--schema-only"],
        ["x", "--schema-only=true"],
        ["x", "--config="],
        ["x", "--verbose"],
        ["--", "-x"],
        [""],
    ],
)
def test_other_forms_go_to_typer(args: list[str]) -> None:
    assert parse_lint(args) is None


def _berth(args: list[str], *, typer_only: bool) -> subprocess.CompletedProcess[str]:
    """``python -m berth lint ARGS``, or the same through typer (as for a form the fast parser leaves)."""
    main = "from berth.cli.app import main" if typer_only else "from berth.cli.entry import main"
    code = f"import sys; sys.argv = ['berth', 'lint', *sys.argv[1:]]\n{main}\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("extra", [["-f", "json"], ["-f", "text"], ["--group-by", "nowhere"]])
def test_berth_lint_says_the_same_with_and_without_typer(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "pvc.yaml").write_text(BAD)
    args = [str(tmp_path), "-j", "1", *extra]
    fast, slow = _berth(args, typer_only=False), _berth(args, typer_only=True)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert fast.returncode in (1, 2) and (fast.stdout or fast.stderr)


def test_berth_lint_starts_without_typer(tmp_path: Path) -> None:
    """No typer, click or rich is imported; the run ends in ``os._exit`` (nothing freed) with the exit code."""
    code = (
        f"import os, sys; sys.argv = ['berth', 'lint', '-f', 'json', {str(tmp_path)!r}]\n"
        "def bye(code):\n"
        "    print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich')))\n"
        "    sys.exit(3)\n"
        "os._exit = bye\n"
        "from berth.cli.entry import main\n"
        "main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout.strip().splitlines()) == (3, ["[]", "0 []"]), out.stdout + out.stderr


def test_a_reader_that_leaves_early_ends_the_run_quietly(tmp_path: Path) -> None:
    """``berth lint ... | head``: as through typer (click), exit 1 and no traceback when stdout is closed."""
    for i in range(200):
        (tmp_path / f"pvc{i}.yaml").write_text(BAD)
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as closed:
        out = subprocess.run(
            [sys.executable, "-m", "berth", "lint", "-j", "1", "-f", "json", str(tmp_path)],
            stdout=closed,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert (out.returncode, out.stderr) == (1, "")
