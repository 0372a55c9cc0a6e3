"""The ``berth`` console entry point: ``berth stage`` starts without typer, every other command through it.

``berth stage`` is what the dataset populate Job and init containers run (``render/datasets.py``),
and its speed is benchmarked against s5cmd (``benchmarks/stage_s5cmd.py``), a Go binary with no
start-up to speak of: importing typer and building the command table of every command cost
~40 ms of CPU before the first byte moved, more wall time on a busy node. So the forms of
``berth stage`` that a Job or a person normally writes are parsed here: two arguments and the
command's own flags, as ``--flag value`` or ``--flag=value``, each at most once, with values
typer would accept. Anything else (``--help``, an unknown or repeated flag, a bad value, a
missing argument) goes to the typer app, which answers it (message, exit code) exactly as for
any command. ``tests/test_cli_entry.py`` keeps the flags here and typer's the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from berth.errors import BerthError

# berth stage's flags -> run_stage's keyword; the values typer would refuse are left to typer.
STAGE_FLAGS = {
    "--concurrency": "concurrency",
    "--shard": "shard",
    "--report": "report",
    "--pushgateway": "pushgateway",
    "-o": "output",
    "--output": "output",
}
PUSHGATEWAY_ENV = "BERTH_PUSHGATEWAY"
MAX_CONCURRENCY = 256


def guarded(run: Callable[[], None]) -> None:
    """Run a command: a BerthError becomes its message, hint and exit code, ^C exit 130; never a traceback."""
    try:
        run()
    except BerthError as err:
        print(f"{err.prefix}{err.message}", file=sys.stderr, flush=True)
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def parse_stage(args: list[str]) -> dict[str, Any] | None:
    """``run_stage``'s keyword arguments for ``berth stage ARGS``; None when typer should parse them."""
    import os

    given: dict[str, str] = {}
    positional: list[str] = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        flag, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")  # click: -o=x is "=x"
        key = STAGE_FLAGS.get(flag)
        if not eq:
            value = next(rest, "-")
        if key is None or key in given or not value or value.startswith("-"):
            return None
        given[key] = value
    concurrency = given.get("concurrency")
    if len(positional) != 2 or given.get("output", "text") not in ("text", "json"):
        return None
    if concurrency is not None and not (concurrency.isdigit() and 1 <= int(concurrency) <= MAX_CONCURRENCY):
        return None
    return {
        "source": positional[0],
        "dest": positional[1],
        "concurrency": int(concurrency) if concurrency is not None else None,
        "shard": given.get("shard"),
        "report": given.get("report"),
        "pushgateway": given.get("pushgateway") or os.environ.get(PUSHGATEWAY_ENV) or None,
        "json_output": given.get("output") == "json",
    }


def run_stage(
    *,
    source: str,
    dest: str,
    concurrency: int | None,
    shard: str | None,
    report: str | None,
    pushgateway: str | None,
    json_output: bool,
) -> None:
    """``berth stage``: stage, write the report and metrics, print one line (or the JSON report)."""
    import json
    import time
    from pathlib import Path

    from berth.contract import STAGE_STATE_DIR
    from berth.runtime.stage import StageStats, export_metrics, parse_shard
    from berth.runtime.stage import stage as do_stage

    last = [0.0]

    def show(stats: StageStats) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            print(
                f"staged {stats.fetched + stats.skipped}/{stats.files} files, "
                f"{stats.bytes_done >> 20} MiB fetched of {stats.bytes_total >> 20} MiB",
                file=sys.stderr,
                flush=True,
            )

    rank_world = parse_shard(shard) if shard is not None else None
    stats = do_stage(source, Path(dest), concurrency=concurrency, progress=show, shard=rank_world)
    result = {"source": source, "dest": dest, **stats.to_json()}
    if report:
        try:
            Path(report).write_text(json.dumps(result) + "\n")
        except OSError as exc:  # the data is staged; a report that cannot be written is not a failed stage
            print(f"warning: cannot write the report to {report}: {exc.strerror}", file=sys.stderr, flush=True)
    export_metrics(source, stats, path=Path(dest) / STAGE_STATE_DIR / "metrics.prom", pushgateway=pushgateway)
    if json_output:
        print(json.dumps(result, indent=2, default=str), flush=True)  # what options.emit_json prints
        return
    print(
        f"{dest}: {stats.files} files from {source}: {stats.fetched} fetched "
        f"({stats.bytes_done / (1 << 20):.1f} MiB in {result['seconds']} s, "
        f"{result['bytesPerSecond'] / (1 << 20):.1f} MiB/s), {stats.skipped} already up to date",
        flush=True,
    )


def main() -> None:
    """Console entry point (``berth``, ``python -m berth``)."""
    args = sys.argv[1:]
    fast = parse_stage(args[1:]) if args[:1] == ["stage"] else None
    if fast is not None:
        guarded(lambda: run_stage(**fast))
        return
    if args[:1] == ["lint"]:  # berth lint's usual forms, also without typer (cli/lint_fast.py)
        from berth.cli.lint_fast import fast_lint

        lint = fast_lint(args[1:])
        if lint is not None:
            guarded(lint)
            return
    from berth.cli.app import main as typer_main

    typer_main()
