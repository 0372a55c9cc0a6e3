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
    nodes: int | None = typer.Option(
        None, "--nodes", min=0, help="Number of fake (kwok) nodes [default: 3, or 0 with --kubelet]."
    ),
    kubelet: int = typer.Option(
        0,
        "--kubelet",
        min=0,
        help="Also start N real nodes (kubelet + containerd + runc; needs root): `--kubelet` alone is one. "
        "They are labelled berth.dev/sandbox-node=kubelet, the fake ones =kwok (pick with a nodeSelector).",
    ),
    kube_proxy: bool = typer.Option(
        False,
        "--kube-proxy",
        help="With --kubelet: also run kube-proxy, so pods reach ClusterIPs (the API server's too). "
        "Its iptables chains are host-wide: one such sandbox per host.",
    ),
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
    fake = nodes if nodes is not None else (0 if kubelet else 3)
    shape = NodeSpec(nodes=fake, zones=zones, gpus=gpus, pods=max_pods)
    if kubelet and timeout == 90.0:
        timeout = 180.0  # real nodes: containerd, the pause image, kubelet registration
    state = sandbox.up(
        shape, bin_dir=bin_dir, timeout_s=timeout, progress=progress, kubelets=kubelet, kube_proxy=kube_proxy
    )
    typer.echo(f"kubeconfig: {state.kubeconfig}")
    if kubelet:  # real nodes run the runtime image (imagePullPolicy: Never): make sure each node has it
        from berth.sandbox.image import ensure_runtime_image, find_containerd_sockets

        reference = ensure_runtime_image(find_containerd_sockets(sandbox.state_dir), progress)
        typer.echo(f"image:      {reference} (imagePullPolicy: Never)")
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


@sandbox_app.command("image")
def image(
    name: str = _NAME,
    state_dir: Path | None = _STATE_DIR,
    containerd_socket: Path | None = typer.Option(
        None, "--containerd-socket", help="containerd to import into [default: the sandbox's, when it runs]."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even when the cache holds these inputs."),
    stock: bool = typer.Option(
        False, "--stock", help="The same Debian python3 without berth or any pip package (berth.local/python-stock)."
    ),
    output: Output = OUTPUT,
) -> None:
    """Build berth's runtime image (Debian python3, numpy, berth from this checkout), cache it, import it.

    Cached under ~/.cache/berth/image by a hash of its inputs; imported into the sandbox's containerd
    (namespace k8s.io, every real node's) when one runs. Prints the reference pods use with imagePullPolicy: Never.
    `--stock` builds an image like a user's without berth, for `lifecycle.runner: inject` (docs/lifecycle.md).
    """
    from berth.sandbox.image import build_image, build_stock_image, find_containerd_sockets, import_image

    progress = _progress()
    sockets = [containerd_socket] if containerd_socket else find_containerd_sockets(_sandbox(name, state_dir).state_dir)
    built = (build_stock_image if stock else build_image)(progress=progress, rebuild=rebuild)
    for sock in sockets:
        import_image(built, sock, progress)
    if not sockets:
        progress(f"no sandbox containerd is running: built and cached only ({built.archive})")
    if output is Output.json:
        emit_json({**built.to_json(), "imported": [str(s) for s in sockets]})
    else:
        typer.echo(built.reference)


def optional_count(argv: list[str]) -> list[str]:
    """``berth sandbox up --kubelet`` without a count means one: ``--kubelet 1`` (Typer has no optional values)."""
    if "sandbox" not in argv[1:3]:
        return argv
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--kubelet" and (i + 1 == len(out) or not out[i + 1].isdigit()):
            out[i] = "--kubelet=1"
    return out


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(sandbox_app)
