"""``berth ckpt list|show|verify|prune|archive|restore`` and ``berth run`` (in-pod entrypoint)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from berth.cli.options import OUTPUT, Output, emit_json
from berth.errors import UsageError

_DIR = typer.Argument(..., help="Checkpoint directory (the hot volume's checkpoint path).")


@contextmanager
def _bytes_progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over bytes on stderr (stdout stays clean for -o json)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


def list_cmd(directory: Path = _DIR, output: Output = OUTPUT) -> None:
    """Steps in DIR: ranks present, size, age, whether complete and archived."""
    as_json = output is Output.json
    import time

    from berth.quantity import format_age
    from berth.runtime.ops import list_steps

    infos = list_steps(directory)
    if as_json:
        emit_json([i.to_json() for i in infos])
        return
    _table(
        ["STEP", "RANKS", "BYTES", "AGE", "COMPLETE", "ARCHIVED"],
        [
            [
                str(i.step),
                f"{len(i.ranks)}/{i.world_size or '?'}",
                f"{i.nbytes:,}",
                format_age(None if i.created is None else time.time() - i.created),
                "yes" if i.complete else "NO",
                "yes" if i.archived else "no",
            ]
            for i in infos
        ],
    )


def show_cmd(
    directory: Path = _DIR, step: int = typer.Argument(..., help="Step to show."), output: Output = OUTPUT
) -> None:
    """Files, chunks and the tensor index of one step, per rank."""
    as_json = output is Output.json
    from berth.runtime.ops import show

    doc = show(directory, step)
    if as_json:
        emit_json(doc)
        return
    for rank, info in doc["ranks"].items():
        typer.echo(f"step {step} rank {rank}: {info['bytes']:,} bytes in {info['path']}")
        for f in info["files"]:
            typer.echo(f"  {f['name']}: {f['size']:,} bytes, {f['chunks']} checksummed chunks")
        _table(["TENSOR", "DTYPE", "SHAPE"], [[t["name"], t["dtype"], str(tuple(t["shape"]))] for t in info["tensors"]])


def verify_cmd(
    directory: Path = _DIR,
    step: int | None = typer.Option(None, "--step", help="Only this step."),
    output: Output = OUTPUT,
) -> None:
    """Read every byte and check it against the manifests; exit 1 naming each bad file and chunk."""
    as_json = output is Output.json
    from berth.runtime.ops import list_steps, verify

    steps = [s for s in list_steps(directory) if step is None or s.step == step]
    with _bytes_progress("verify", sum(s.nbytes for s in steps), not as_json) as progress:
        problems = verify(directory, step, progress)
    if as_json:
        emit_json({"ok": not problems, "steps": len(steps), "problems": [p.to_json() for p in problems]})
    elif not problems and not steps:
        typer.echo(
            f"nothing to verify: no committed checkpoint{f' at step {step}' if step is not None else ''} in {directory}"
        )
    elif not problems:
        typer.echo(f"all {len(steps)} checkpoint step(s) verify")
    for p in problems:
        where = f"{p.path} chunk {p.chunk}" if p.chunk is not None else (p.path or "?")
        detail = p.message.removeprefix(f"{p.path}: ")  # the message names the path too
        typer.echo(f"step {p.step} rank {p.rank}: {where}: {detail}", err=True)
    if problems:
        raise typer.Exit(1)


def prune_cmd(
    directory: Path = _DIR,
    keep_last: int = typer.Option(3, "--keep-last", min=1, help="Keep the newest N steps."),
    keep_every: int | None = typer.Option(None, "--keep-every", min=1, help="Also keep every K-th step."),
    keep_unarchived: bool | None = typer.Option(
        None,
        "--keep-unarchived/--include-unarchived",
        help="Keep steps not yet archived (default: when DIR uses an archive).",
    ),
    yes: bool = typer.Option(False, "--yes", help="Delete; without it this is a dry run."),
    output: Output = OUTPUT,
) -> None:
    """Delete old steps by a retention policy (dry run unless --yes)."""
    as_json = output is Output.json
    from berth.runtime.ops import plan_prune, prune

    planned = plan_prune(directory, keep_last, keep_every)
    removed = prune(directory, planned, keep_unarchived=keep_unarchived) if yes else []
    if as_json:
        emit_json({"dryRun": not yes, "planned": planned, "removed": removed})
        return
    verb = "removed" if yes else "would remove (dry run; --yes deletes)"
    shown = removed if yes else planned
    typer.echo(f"{verb}: {', '.join(map(str, shown)) or 'nothing'}")


def archive_cmd(
    directory: Path = _DIR,
    to: str | None = typer.Option(None, "--to", help="s3://bucket/prefix (default BERTH_ARCHIVE_URL)."),
    step: int | None = typer.Option(None, "--step", help="Only this step."),
    output: Output = OUTPUT,
) -> None:
    """Upload committed shards the archive lacks (manifest last), with a progress bar."""
    as_json = output is Output.json
    from berth.runtime.ops import archive_dir, total_bytes

    url = _archive_url(to)
    with _bytes_progress("upload", total_bytes(directory, step), not as_json) as progress:
        sent = archive_dir(directory, url, step=step, progress=progress)
    if as_json:
        emit_json({"archive": url, "uploaded": [{"step": s, "rank": r} for s, r in sent]})
    else:
        typer.echo(f"uploaded {len(sent)} shard(s) to {url}")


def restore_cmd(
    directory: Path = _DIR,
    source: str | None = typer.Option(None, "--from", help="s3://bucket/prefix (default BERTH_ARCHIVE_URL)."),
    step: int | None = typer.Option(None, "--step", help="This step instead of the newest complete one."),
    output: Output = OUTPUT,
) -> None:
    """Download the newest complete archived step (all ranks) into DIR, verified on the next restore."""
    as_json = output is Output.json
    from berth.runtime.ops import newest_complete_in_archive, restore_dir

    url = _archive_url(source)
    found = newest_complete_in_archive(url, step)
    with _bytes_progress("download", found.nbytes, not as_json) as progress:
        ranks = restore_dir(directory, found, progress)
    if as_json:
        emit_json({"archive": url, "step": found.step, "ranks": ranks, "directory": str(directory)})
    else:
        typer.echo(f"restored step {found.step} ({len(ranks)} rank(s)) into {directory}")


def _archive_url(given: str | None) -> str:
    """The archive URL, checked before any progress bar is drawn or byte is read."""
    from berth.runtime.archive import parse_url

    url = given or os.environ.get("BERTH_ARCHIVE_URL")
    if not url:
        raise UsageError("no archive given", hint="pass --to/--from s3://bucket/prefix or set BERTH_ARCHIVE_URL")
    parse_url(url)
    return url


def run_cmd(
    command: list[str] = typer.Argument(..., help="The training command, after --."),
    dns_timeout: float = typer.Option(
        600, "--dns-timeout", help="Seconds to wait for every peer's DNS name; 0 skips the wait."
    ),
) -> None:
    """In-pod entrypoint: set the rendezvous env (same as the rendered preamble), wait for peers, exec CMD."""
    from berth.runtime.launch import run

    raise typer.Exit(run(command, os.environ, dns_timeout=dns_timeout))


def register(app: typer.Typer) -> None:
    """Add ``berth ckpt …`` and ``berth run`` to the root app."""
    ckpt = typer.Typer(
        name="ckpt", help="Inspect, verify, prune and copy checkpoint directories.", no_args_is_help=True
    )
    for name, command in (
        ("list", list_cmd),
        ("show", show_cmd),
        ("verify", verify_cmd),
        ("prune", prune_cmd),
        ("archive", archive_cmd),
        ("restore", restore_cmd),
    ):
        ckpt.command(name)(command)
    app.add_typer(ckpt)
    app.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})(run_cmd)
