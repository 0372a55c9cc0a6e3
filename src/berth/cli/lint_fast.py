"""``berth lint`` without typer: the forms of the command people and CI write are parsed here.

Like ``berth stage`` (``entry.py``), ``berth lint`` is measured against Go linters that have no
start-up to speak of (``benchmarks/lint_corpus.py``): importing typer and building the table of
every command cost ~0.22 G instructions (~50 ms of CPU), more than a quarter of linting an empty
directory. So paths and the command's own flags, as ``--flag value`` or ``--flag=value``, each at
most once (``--schema-dir`` as often as wanted), with values typer would accept, are parsed here.
Anything else (``--help``, ``--list-rules``, ``--explain``, an unknown or repeated flag, a missing
or odd value, no path) goes to the typer app, which answers it exactly as before.
``tests/lint/test_cli_fast.py`` keeps these flags and typer's the same.

The report is printed as typer's ``echo`` prints it: one write and a newline, ANSI sequences
removed when stdout is no terminal; the fast path is taken only when stdout writes UTF-8 (where
that echo would write the text unchanged).
"""

from __future__ import annotations

import codecs
import gc
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from berth.lint.engine import LintResult, Progress

FORMATS = ("text", "json", "sarif", "junit")  # lint_cmds.Format, default first
# berth lint's flags (but --list-rules and --explain, left to typer) -> run_lint's keyword
LINT_FLAGS = {
    "-f": "fmt",
    "-o": "fmt",
    "--format": "fmt",
    "--fail-on": "fail_on",
    "--kubernetes-version": "kubernetes_version",
    "--schema-dir": "schema_dir",
    "--schema-only": "schema_only",
    "--config": "config",
    "-j": "jobs",
    "--jobs": "jobs",
    "--group-by": "group_by",
}
_SWITCHES = frozenset({"schema_only"})  # flags without a value
_REPEATABLE = frozenset({"schema_dir"})
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")  # what click's echo strips when stdout is no terminal


def parse_lint(args: list[str]) -> dict[str, Any] | None:
    """``run_lint``'s keyword arguments for ``berth lint ARGS``; None when typer should parse them."""
    given: dict[str, Any] = {"schema_dir": []}
    paths: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "-" or not arg.startswith("-"):
            if not arg:
                return None
            paths.append(arg)
            continue
        flag, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")  # click: -o=x is "=x"
        key = LINT_FLAGS.get(flag)
        if key is None:
            return None
        if key in _SWITCHES:
            if eq or key in given:
                return None
            given[key] = True
            continue
        if not eq:
            value = next(rest, "-")
        if not value or value.startswith("-") or (key in given and key not in _REPEATABLE):
            return None
        if key in _REPEATABLE:
            given[key].append(value)
        else:
            given[key] = value
    fmt, jobs = given.get("fmt", FORMATS[0]), given.get("jobs", "0")
    if not paths or fmt not in FORMATS or not (jobs.isascii() and jobs.isdigit()):
        return None
    return {
        "paths": paths,
        "fmt": fmt,
        "fail_on": given.get("fail_on"),
        "kubernetes_version": given.get("kubernetes_version"),
        "schema_dir": given["schema_dir"],
        "schema_only": given.get("schema_only", False),
        "config": given.get("config"),
        "jobs": int(jobs),
        "group_by": given.get("group_by", "dir"),
    }


def fast_lint(args: list[str]) -> Callable[[], None] | None:
    """The whole ``berth lint ARGS`` run without typer, or None when typer should run it."""
    parsed = parse_lint(args)
    encoding = getattr(sys.stdout, "encoding", None)
    if parsed is None or not encoding or codecs.lookup(encoding).name != "utf-8":
        return None

    def run() -> None:
        # lint_paths pauses the cycle collector while it lints; kept off to the end (the process exits
        # at once), its first collection does not walk the millions of objects the run retained.
        gc.disable()
        retained: list[object] = []
        report, code = run_lint(**parsed, retain=retained)
        if not sys.stdout.isatty():
            report = _ANSI.sub("", report)
        try:
            sys.stdout.write(report + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # as click does: a reader that left (| head) is no error worth a message
            code = 1
        sys.stderr.flush()
        # Exit without freeing what the run read (lint_paths' retain) or the interpreter's modules:
        # every pool worker has been joined and nothing else is buffered.
        os._exit(code)

    return run


def run_lint(
    *,
    paths: list[str],
    fmt: str,
    fail_on: str | None,
    kubernetes_version: str | None,
    schema_dir: list[str] | None,
    schema_only: bool,
    config: str | None,
    jobs: int,
    group_by: str,
    retain: list[object] | None = None,
) -> tuple[str, int]:
    """Lint ``paths`` as ``berth lint`` does: the report to print and the exit code (``retain``: see lint_paths)."""
    from berth.errors import UsageError
    from berth.lint.config import find_config, load_config
    from berth.lint.engine import GROUP_BY, LintOptions, lint_paths
    from berth.lint.model import Severity
    from berth.lint.output import render
    from berth.lint.rules import all_rules

    cfg = load_config(config or find_config(paths))
    try:
        threshold = Severity.parse(fail_on) if fail_on else (cfg.fail_on or Severity.WARNING)
    except ValueError as err:
        raise UsageError(f"--fail-on: {err}") from None
    if group_by not in GROUP_BY:
        raise UsageError(f"--group-by: unknown grouping {group_by!r}", hint="use " + ", ".join(GROUP_BY))
    options = LintOptions(
        group_by=group_by,
        kubernetes_version=kubernetes_version or cfg.kubernetes_version,
        schema_dirs=tuple(schema_dir or ()),
        schema_only=schema_only,
        jobs=jobs,
        config=cfg,
    )
    result = _run_with_progress(lambda progress: lint_paths(paths, options, progress, retain=retain))
    colour = fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return render(result, fmt, all_rules(), colour=colour, fail_on=threshold), result.exit_code(threshold)


def _run_with_progress(run: Callable[[Progress | None], LintResult]) -> LintResult:
    """A progress bar on stderr for large inputs when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return run(None)
    from rich.console import Console
    from rich.progress import Progress as Bar

    with Bar(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("linting", total=None)

        def update(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        return run(update)
