"""`berth sandbox up|down|status|env`: a local Kubernetes control plane to try berth on."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from berth.cli.options import OUTPUT, Output, emit_json

if TYPE_CHECKING:
    from berth.sandbox import Sandbox

sandbox_app = typer.Typer(
    name="sandbox",
    help="A real Kubernetes control plane on this machine (etcd, kube-apiserver, controllers, "
    "scheduler, kwok fake GPU nodes) to try berth without a cloud.",
    no_args_is_help=True,
)

_NAME = typer.Option("default", "--name", help="Sandbox name (several can run side by side).")
_STATE_DIR = typer.Option(
    None, "--state-dir", help="State directory [default: ~/.cache/berth/sandbox/NAME].", dir_okay=True
)


def _sandbox(name: str, state_dir: Path | None) -> Sandbox:
    from berth.sandbox import Sandbox

    return Sandbox(name, state_dir)


def _progress() -> Callable[[str], None]:
    """Timestamped progress lines on stderr (stdout stays clean for `eval $(berth sandbox env)`)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    start = time.monotonic()

    def emit(message: str) -> None:
        console.print(f"[dim][{time.monotonic() - start:5.1f}s][/dim] {message}", markup=True)

    return emit


@sandbox_app.command("up")
def up(
    name: str = _NAME,
    state_dir: Path | None = _STATE_DIR,
    nodes: int = typer.Option(3, "--nodes", min=1, help="Number of fake nodes."),
    zones: int = typer.Option(2, "--zones", min=1, help="Zones the nodes are spread over."),
    gpus: int = typer.Option(8, "--gpus", min=0, help="nvidia.com/gpu capacity of each node."),
    max_pods: int = typer.Option(110, "--max-pods", min=1, help="Pod capacity of each node."),
    build: bool = typer.Option(False, "--build", help="Build the binaries first when they are missing."),
    timeout: float = typer.Option(90.0, "--timeout", min=5, help="Seconds to wait for the sandbox."),
) -> None:
    """Start the sandbox (or report the running one) and print how to use it."""
    from berth.sandbox import NodeSpec, find_bin_dir
    from berth.sandbox import build as build_binaries

    progress = _progress()
    bin_dir = None
    if build and find_bin_dir() is None:
        progress("building the control plane (tools/kube/build.sh)")
        bin_dir = build_binaries(progress)
    sandbox = _sandbox(name, state_dir)
    shape = NodeSpec(nodes=nodes, zones=zones, gpus=gpus, pods=max_pods)
    state = sandbox.up(shape, bin_dir=bin_dir, timeout_s=timeout, progress=progress)
    typer.echo(f"kubeconfig: {state.kubeconfig}")
    where = ("" if name == "default" else f" --name {shlex.quote(name)}") + (
        f" --state-dir {shlex.quote(str(state_dir))}" if state_dir else ""
    )
    typer.echo(f'use it:     eval "$(berth sandbox env{where})"')


@sandbox_app.command("down")
def down(name: str = _NAME, state_dir: Path | None = _STATE_DIR) -> None:
    """Stop every sandbox process by PID and delete its state (a throwaway cluster: no dry run)."""
    sandbox = _sandbox(name, state_dir)
    stopped = sandbox.down()
    if stopped:
        typer.echo(f"stopped {len(stopped)} processes ({', '.join(map(str, stopped))}); removed {sandbox.state_dir}")
    else:
        typer.echo(f"sandbox {name!r} was not running; nothing to stop")


@sandbox_app.command("status")
def status(
    name: str = _NAME,
    state_dir: Path | None = _STATE_DIR,
    output: Output = OUTPUT,
) -> None:
    """Show whether each process runs and the API answers; exit 1 when the sandbox is not running."""
    st = _sandbox(name, state_dir).status()
    if output is Output.json:
        emit_json(st.to_json())
    elif not st.exists:
        typer.echo(f"sandbox {name!r}: not running ({st.state_dir})")
    else:
        state = "running" if st.running else "NOT HEALTHY"
        typer.echo(f"sandbox {name!r}: {state}  server {st.server}  version {st.version or '-'}")
        typer.echo(f"kubeconfig {st.kubeconfig}")
        for p in st.processes:
            typer.echo(f"  {p.name:<24} pid {p.pid:<8} {'up' if p.running else 'DOWN'}  log {p.log}")
    if not st.running:
        raise typer.Exit(1)


@sandbox_app.command("env")
def env(name: str = _NAME, state_dir: Path | None = _STATE_DIR) -> None:
    """Print `export` lines for eval: KUBECONFIG, and PATH with the sandbox's kubectl first."""
    values = _sandbox(name, state_dir).env()
    for key, value in values.items():
        typer.echo(f"export {key}={shlex.quote(value)}")
    typer.echo(f'export PATH={shlex.quote(values["BERTH_KUBE_BIN"])}:"$PATH"')


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(sandbox_app)
