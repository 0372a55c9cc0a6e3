"""``berth wait NAME --for complete|ready``: exit 0 when done, 1 when the run Failed, 2 on timeout."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from berth.cli.options import (
    CLUSTER_NAME,
    CONTEXT,
    KUBECONFIG,
    NAME_NAMESPACE,
    OUTPUT,
    TIMEOUT,
    Output,
    connect,
    emit_json,
    make_console,
    timeout_seconds,
)


class Until(StrEnum):
    """What ``--for`` waits for."""

    complete = "complete"
    ready = "ready"


def _until(value: str) -> Until:
    from berth.errors import UsageError

    try:
        return Until(value)
    except ValueError:
        raise UsageError(f"unknown --for {value!r}", "use complete or ready") from None


FOR: Any = typer.Option(
    "complete",
    "--for",
    parser=_until,
    metavar="complete|ready",
    help="complete: the run Succeeded (or Failed); ready: every pod Ready on the current revision.",
)


def wait(
    name: str = CLUSTER_NAME,
    until: Until = FOR,
    timeout: str = TIMEOUT,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Wait until the run completes (Succeeded: exit 0, Failed: 1) or every pod is ready; 2 on timeout."""
    from berth.kube.lifecycle import wait_run

    seconds = timeout_seconds(timeout)
    kube = connect(kubeconfig, context, namespace)
    result = wait_run(kube, name, kube.namespace, until=until.value, timeout=seconds)
    if output is Output.json:
        emit_json(result.to_json())
    else:
        run = result.state.run
        detail = f": {run.reason}" if run and run.reason and result.result == "Failed" else ""
        if result.result == "Timeout":
            phase = run.phase if run else f"{result.state.ready_replicas}/{result.state.replicas} ready"
            detail = f" after {seconds:.0f}s (now {phase})"
        make_console().print(f"{name}: {result.result}{detail}", markup=False)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``berth wait`` to the root app."""
    app.command()(wait)
