"""The ``berth`` command: one Typer app, commands registered from one module per area.

Each area module defines its commands as module-level functions and adds them in
``register(app)``; shared flags come from ``berth.cli.options``. At module level they import
only typer and the standard library, and the library lazily inside each command, so
``berth --version`` stays fast (tests/test_cli_options.py checks it).
"""

from __future__ import annotations

import sys

import typer

from berth import __version__
from berth.cli import (
    backup_cmds,
    ckpt_cmds,
    cluster_cmds,
    doctor_cmds,
    lint_cmds,
    operator_cmds,
    sandbox_cmds,
    spec_cmds,
    storage_cmds,
    wait_cmds,
)
from berth.cli.entry import guarded

app = typer.Typer(
    name="berth",
    help="Storage for distributed ML training on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"berth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """berth: one spec to the storage stack of a training cluster, and the tools to run it."""


for _module in (
    spec_cmds,
    lint_cmds,
    ckpt_cmds,
    cluster_cmds,
    doctor_cmds,
    sandbox_cmds,
    wait_cmds,
    storage_cmds,
    backup_cmds,
    operator_cmds,
):
    _module.register(app)


def main() -> None:
    """Every command through typer (``berth.cli.entry.main``, the console entry point, starts ``berth stage``
    without it): user errors become one message and an exit code, never a traceback."""

    def run() -> None:
        sys.argv = sandbox_cmds.optional_count(sys.argv)
        app(prog_name="berth")

    guarded(run)
