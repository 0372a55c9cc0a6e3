"""Storage commands: resize (volumes that grow) and stage (datasets into a volume)."""

from __future__ import annotations

import typer

from berth.cli.entry import MAX_CONCURRENCY, PUSHGATEWAY_ENV, run_stage
from berth.cli.options import (
    CONTEXT,
    KUBECONFIG,
    OUTPUT,
    SPEC,
    SPEC_NAMESPACE,
    TIMEOUT,
    Output,
    connect,
    emit_json,
    load_spec_in,
    make_console,
    timeout_seconds,
)


def resize(
    spec: str = SPEC,
    yes: bool = typer.Option(False, "--yes", help="Really resize (default: only show the plan)."),
    timeout: str = TIMEOUT,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = SPEC_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Grow volumes to the spec's sizes: patch each claim, recreate the StatefulSet orphaning its pods."""
    from berth.kube.resize import resize as do_resize

    tc = load_spec_in(spec, namespace)
    kube = connect(kubeconfig, context, tc.namespace)
    err = make_console(stderr=True)
    result = do_resize(
        kube,
        tc,
        yes=yes,
        filename=spec,
        timeout_s=timeout_seconds(timeout),
        progress=lambda line: err.print(line, markup=False),
    )
    if output is Output.json:
        emit_json(result.to_json())
        return
    console = make_console()
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    if not result.changes:
        console.print(f"nothing to resize: {tc.name}'s volumes already have the spec's sizes", markup=False)
        return
    verb = "would grow" if result.dry_run else "grew"
    for template, (before, after) in result.templates.items():
        console.print(f"template {template}: {verb} {before} → {after}", markup=False)
    for claim in result.claims:
        state = (
            "" if result.dry_run else f" (capacity {claim.capacity or '?'}; {', '.join(claim.conditions) or 'done'})"
        )
        console.print(f"  claim {claim.name}: {claim.before} → {claim.after}{state}", markup=False)
    if result.dry_run:
        console.print(
            "dry run: nothing changed; --yes patches the claims and recreates the StatefulSet "
            "with --cascade=orphan (pods keep running)",
            markup=False,
        )
    elif result.recreated:
        console.print(f"StatefulSet {tc.name} recreated with the new template; its pods were not touched", markup=False)


def stage(
    source: str = typer.Argument(..., help="s3://bucket/prefix (every object under it) or an https:// URL."),
    dest: str = typer.Argument(..., help="Directory to fill (a mounted volume)."),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        min=1,
        max=MAX_CONCURRENCY,
        help="Files in flight (default: 64 if small, else 16; ranged GETs: 8).",
    ),
    shard: str | None = typer.Option(
        None, "--shard", metavar="RANK/WORLD", help="Stage files RANK, RANK+WORLD, … of the sorted listing."
    ),
    report: str | None = typer.Option(
        None, "--report", metavar="FILE", help="Also write the JSON report here (a pod's /dev/termination-log)."
    ),
    pushgateway: str | None = typer.Option(
        None, "--pushgateway", envvar=PUSHGATEWAY_ENV, metavar="URL", help="Push the metrics to a Pushgateway."
    ),
    output: Output = OUTPUT,
) -> None:
    """Copy a dataset into a volume: parallel, resumable, verified; skips files already staged."""
    run_stage(
        source=source,
        dest=dest,
        concurrency=concurrency,
        shard=shard,
        report=report,
        pushgateway=pushgateway,
        json_output=output is Output.json,
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    for command in (resize, stage):
        app.command()(command)
