"""The console entry point's own parser for ``berth stage`` (no typer at start-up) agrees with typer's.

Every form the fast parser takes must mean what typer makes of it; every form it does not take goes to
typer, which answers it as before. No cluster, no object store: the parsing alone (the staging itself is
tests/runtime/test_stage.py's, through ``python -m berth``, which is this entry point).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from berth.cli.entry import STAGE_FLAGS, parse_stage


def _typer_stage() -> Any:
    import typer.main

    from berth.cli.app import app

    return typer.main.get_command(app).commands["stage"]  # type: ignore[attr-defined]


def _typer_kwargs(args: list[str]) -> dict[str, Any]:
    """What typer's parser makes of ``berth stage ARGS``, in run_stage's terms."""
    command = _typer_stage()
    ctx = command.make_context("stage", list(args))
    params = dict(ctx.params)
    output = params.pop("output")
    return {**params, "json_output": output.value == "json"}


def test_the_fast_parser_knows_exactly_the_flags_typer_knows() -> None:
    flags = {opt for param in _typer_stage().params for opt in param.opts if opt.startswith("-")}
    assert set(STAGE_FLAGS) == flags


FAST = [
    ["s3://b/p", "/data"],
    ["s3://b/p", "/data", "--report", "/dev/termination-log"],  # what render/datasets.py writes
    ["s3://b/p", "/data", "--concurrency", "8", "--report", "/dev/termination-log", "--shard", "3/8"],
    ["https://h/f.bin", "/data", "--concurrency=256", "-o", "json"],
    ["--output=text", "s3://b/p", "/data", "--pushgateway", "http://pg:9091"],
]


@pytest.mark.parametrize("args", FAST)
def test_forms_the_fast_parser_takes_mean_what_typer_makes_of_them(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERTH_PUSHGATEWAY", raising=False)
    assert parse_stage(args) == _typer_kwargs(args)


def test_the_pushgateway_comes_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_PUSHGATEWAY", "http://pg:9091")
    args = ["s3://b/p", "/data"]
    assert parse_stage(args) == _typer_kwargs(args)
    assert parse_stage(args)["pushgateway"] == "http://pg:9091"  # type: ignore[index]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["s3://b/p"],
        ["s3://b/p", "/data", "extra"],
        ["s3://b/p", "/data", "--concurrency", "0"],
        ["s3://b/p", "/data", "--concurrency", "257"],
        ["s3://b/p", "/data", "--concurrency", "many"],
        ["s3://b/p", "/data", "--concurrency"],
        ["s3://b/p", "/data", "-o", "yaml"],
        ["s3://b/p", "/data", "-o=json"],  # click reads "=json"
        ["s3://b/p", "/data", "-ojson"],
        ["s3://b/p", "/data", "--report", "a", "--report", "b"],
        ["s3://b/p", "/data", "--verbose"],
        ["s3://b/p", "--", "-data"],
    ],
)
def test_other_forms_go_to_typer(args: list[str]) -> None:
    assert parse_stage(args) is None


def test_berth_stage_starts_without_typer() -> None:
    """The fast path imports neither typer nor click (a bad --shard fails after parsing, before any I/O)."""
    code = (
        "import sys; sys.argv = ['berth', 'stage', 's3://b/p', '/nonexistent', '--shard', '9/2']\n"
        "from berth.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n"
        "    print(e.code, sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr
    assert "--shard '9/2' is not RANK/WORLD" in out.stderr
