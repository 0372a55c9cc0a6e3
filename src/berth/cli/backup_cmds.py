"""Backup commands: backup, backups (list), restore; Velero does the copying, berth the choosing and checking."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from collections.abc import Callable

    from berth.kube.backup import Operation

VELERO_NAMESPACE = typer.Option(
    None,
    "--velero-namespace",
    help="Namespace Velero runs in (default: the spec's backup.veleroNamespace, else velero).",
)
VELERO_NAMESPACE_NAMED = typer.Option("velero", "--velero-namespace", help="Namespace Velero runs in.")
LIST_NAMESPACE = typer.Option(
    None, "-n", "--namespace", help="Only backups of the cluster in this namespace (default: any)."
)
TARGET_NAMESPACE = typer.Option(
    None,
    "-n",
    "--namespace",
    help="Namespace to restore into (default: the one the backup was taken in; --from-archive: the spec's).",
)
REFUSED = 3  # docs/cli.md: refused, nothing written; the cluster's state forbids the change
WAIT = typer.Option(True, "--wait/--no-wait", help="Wait until Velero reports a final phase.")


def _progress(shown: bool) -> Callable[[Operation], None] | None:
    if not shown:
        return None
    err = make_console(stderr=True)
    return lambda op: err.print(f"{op.kind} {op.name}: {op.summary()}", markup=False)


def _finish(op: Operation, output: Output, extra: dict[str, Any] | None = None) -> None:
    """Print the final state; a phase other than Completed exits 1 with Velero's reason."""
    if output is Output.json:
        emit_json({**op.to_json(), **(extra or {})})
    else:
        make_console().print(f"{op.kind} {op.namespace}/{op.name}: {op.summary()}", markup=False)
    problem = op.problem()
    if problem:
        typer.echo(f"error: {problem}", err=True)
        typer.echo(f"  hint: `velero {op.kind.lower()} describe {op.name} --details` shows each item", err=True)
        raise typer.Exit(1)


def backup(
    name: str = CLUSTER_NAME,
    backup_name: str | None = typer.Option(None, "--backup-name", help="Name of the Backup (default: NS-NAME-TIME)."),
    ttl: str | None = typer.Option(
        None, "--ttl", help="How long Velero keeps it (default: spec.backup.ttl, else 720h)."
    ),
    storage_location: str | None = typer.Option(None, "--storage-location", help="Velero BackupStorageLocation."),
    snapshot_volumes: bool | None = typer.Option(
        None, "--snapshot-volumes/--no-snapshot-volumes", help="Snapshot the claims' volumes (default: yes)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the Backup object; create nothing."),
    flush: bool = typer.Option(
        True, "--flush/--no-flush", help="First have every rank's newest checkpoint in spec.archive (default: yes)."
    ),
    flush_timeout: str = typer.Option("120s", "--flush-timeout", help="How long to wait for the ranks' flush."),
    wait: bool = WAIT,
    timeout: str = TIMEOUT,
    velero_namespace: str | None = VELERO_NAMESPACE,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Back up cluster NAME with Velero: its objects and claims (by its labels), volumes as snapshots.

    With spec.archive, every rank first flushes its newest checkpoint to the archive; a rank that
    does not is a warning, and the Backup records the steps that were (berth.dev/archive-steps).
    """
    from berth.kube.backup import create, plan_backup, require_velero
    from berth.kube.backup import wait as wait_for

    timeout_s = timeout_seconds(timeout)
    kube = connect(kubeconfig, context, namespace)
    require_velero(kube)
    plan = plan_backup(
        kube,
        name,
        kube.namespace,
        backup_name=backup_name,
        velero_namespace=velero_namespace,
        ttl=ttl,
        storage_location=storage_location,
        snapshot_volumes=snapshot_volumes,
    )
    err = make_console(stderr=True)
    for note in plan.notes:
        err.print(f"note: {note}", markup=False)
    if plan.archive and flush:
        err.print(f"note: every rank's newest checkpoint is flushed to {plan.archive} first", markup=False)
    if dry_run:
        if output is Output.json:
            emit_json({"dryRun": True, **plan.to_json()})
        else:
            _print_yaml(plan.obj)
        return
    flushed: list[dict[str, Any]] = []
    warnings: list[str] = []
    if plan.archive and flush and plan.replicas:
        flushed, warnings = _flush(plan.archive, plan.replicas, timeout_seconds(flush_timeout))
        steps = {str(f["rank"]): f["step"] for f in flushed if f["archived"] and f["step"] is not None}
        from berth.contract import ANNOTATION_ARCHIVE_STEPS

        plan.obj["metadata"].setdefault("annotations", {})[ANNOTATION_ARCHIVE_STEPS] = json.dumps(steps)
    op = create(kube, plan.obj)
    err.print(
        f"created Backup {op.namespace}/{op.name} of {name} in {kube.namespace} ({len(plan.claims)} claims)",
        markup=False,
    )
    if wait:
        op = wait_for(kube, "Backup", op.name, op.namespace, timeout_s=timeout_s, progress=_progress(True))
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)
    _finish(op, output, {"flush": flushed, "flushWarnings": warnings} if plan.archive and flush else None)


def _flush(url: str, replicas: int, timeout_s: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Ask every rank to flush (runtime/flush.py); per-rank results and the warnings to repeat at the end."""
    from berth.runtime.archive import ArchiveError
    from berth.runtime.flush import RankFlush, flush_all

    err = make_console(stderr=True)
    shown: set[int] = set()

    def said(r: RankFlush) -> None:
        state = f"step {r.step} archived" if r.ok else (r.error or f"step {r.step} not archived")
        err.print(f"flush rank {r.rank}: {state}", markup=False)
        shown.add(r.rank)

    err.print(f"flushing {replicas} ranks' newest checkpoints to {url} …", markup=False)
    try:
        ranks = flush_all(url, replicas, timeout_s=timeout_s, progress=said)
    except ArchiveError as failed:
        why = f"no rank flushed: {failed.message}; the archive may lack the newest steps"
        return [RankFlush(r, error=failed.message).to_json() for r in range(replicas)], [why]
    for r in ranks:
        if r.rank not in shown:  # silent until the timeout
            said(r)
    bad = [r for r in ranks if not r.ok]
    warnings = [f"rank {r.rank} did not flush ({r.error}): the archive may lack its newest step" for r in bad]
    return [r.to_json() for r in ranks], warnings


def backups(
    name: str | None = typer.Argument(None, help="Training cluster (default: every cluster berth backed up)."),
    velero_namespace: str = VELERO_NAMESPACE_NAMED,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = LIST_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """List the Velero backups of a training cluster (berth's and its Schedule's), oldest first."""
    from berth.kube.backup import list_backups, require_velero

    kube = connect(kubeconfig, context, namespace)
    require_velero(kube)
    found = list_backups(kube, name, namespace, velero_namespace)
    if output is Output.json:
        emit_json({"backups": [op.to_json() for op in found]})
        return
    console = make_console()
    if not found:
        console.print(f"no backups of {name or 'any berth cluster'} in {velero_namespace}", markup=False)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "CLUSTER", "NAMESPACE", "PHASE", "ERRORS", "WARNINGS", "STARTED", "EXPIRES"):
        table.add_column(column, no_wrap=True)
    for op in found:
        table.add_row(
            op.name,
            op.cluster,
            ",".join(op.source_namespaces),
            op.phase or "New",
            str(op.errors),
            str(op.warnings),
            op.started or "",
            op.expiration or "",
        )
    console.print(table)


def restore(
    name: str = CLUSTER_NAME,
    from_backup: str | None = typer.Option(None, "--from-backup", "--from", help="The Velero Backup to restore from."),
    from_archive: str | None = typer.Option(
        None,
        "--from-archive",
        help="s3://bucket/prefix: recreate the cluster from --spec and seed each rank's volume from this archive.",
    ),
    spec_file: str | None = typer.Option(
        None, "--spec", "-f", help="With --from-archive: the cluster's spec (the file `berth up` took)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Really restore (default: only check and show it)."),
    restore_name: str | None = typer.Option(None, "--restore-name", help="Name of the Restore (default: BACKUP-TIME)."),
    wait: bool = WAIT,
    timeout: str = TIMEOUT,
    velero_namespace: str = VELERO_NAMESPACE_NAMED,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = TARGET_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Restore cluster NAME from a Velero backup, or recreate it seeded from its archive. Dry run without --yes.

    Refused while the cluster runs or its claims exist in the target namespace, the backup is
    unfinished, or the archive holds no step every rank has: exit 3, nothing written. Exit 1 when
    Velero ends in any phase but Completed, or the archive cannot be read.
    """
    from berth.errors import UsageError

    if (from_backup is None) == (from_archive is None):
        raise UsageError(
            "give exactly one of --from-backup B and --from-archive s3://…", hint="see `berth restore --help`"
        )
    timeout_s = timeout_seconds(timeout)
    if from_archive is not None:
        if spec_file is None:
            raise UsageError(
                "--from-archive needs the cluster's spec: --spec FILE",
                hint="the file `berth up` applied; the archive holds checkpoints, not the cluster's objects",
            )
        _restore_archive(name, from_archive, spec_file, yes, wait, timeout_s, kubeconfig, context, namespace, output)
        return
    assert from_backup is not None
    from berth.kube.backup import create, plan_restore, require_velero
    from berth.kube.backup import wait as wait_for

    kube = connect(kubeconfig, context, namespace)
    require_velero(kube)
    plan = plan_restore(kube, name, from_backup, namespace, velero_namespace, restore_name=restore_name)
    if not yes or plan.blockers:
        if output is Output.json:
            emit_json({"dryRun": True, **plan.to_json()})
        else:
            console = make_console()
            console.print(
                f"restore {name} from Backup {from_backup} ({plan.backup.summary()}) "
                f"into namespace {plan.target}"
                + (f" (backed up from {plan.source})" if plan.target != plan.source else ""),
                markup=False,
            )
            for blocker in plan.blockers:
                console.print(f"  refused: {blocker}", markup=False)
            if not plan.blockers:
                console.print("dry run: nothing created; --yes creates this Restore:", markup=False)
                _print_yaml(plan.obj)
        if plan.blockers:
            raise typer.Exit(REFUSED)
        return
    op = create(kube, plan.obj)
    err = make_console(stderr=True)
    err.print(f"created Restore {op.namespace}/{op.name} from Backup {from_backup} into {plan.target}", markup=False)
    if wait:
        op = wait_for(kube, "Restore", op.name, op.namespace, timeout_s=timeout_s, progress=_progress(True))
    _finish(op, output)
    if op.succeeded and output is Output.text:
        make_console().print(
            f"next: `berth status {name} -n {plan.target}`: the StatefulSet is back and its pods start on the "
            "restored claims, resuming from the newest checkpoint on them",
            markup=False,
        )


def _restore_archive(
    name: str,
    url: str,
    spec_file: str,
    yes: bool,
    wait: bool,
    timeout_s: float,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: Output,
) -> None:
    """``restore --from-archive``: check the archive (here), the namespace, then apply with the seed."""
    from berth.cli.options import load_spec_in
    from berth.errors import UsageError
    from berth.kube.preflight import refuse_operator_managed
    from berth.kube.restore import apply_archive_restore, check_spec, plan_archive_restore, seed_reports
    from berth.runtime.archive import parse_url
    from berth.runtime.seed import newest_agreed

    spec = load_spec_in(spec_file, namespace)
    if spec.name != name:
        raise UsageError(f"{spec_file} is the spec of {spec.name}, not {name}", hint=f"berth restore {spec.name} …")
    parse_url(url)
    check_spec(spec)
    run = newest_agreed(url, spec.spec.replicas)
    kube = connect(kubeconfig, context, spec.namespace)
    refuse_operator_managed(kube, spec.name, spec.namespace, "up")
    plan = plan_archive_restore(kube, spec, url)
    as_json = output is Output.json
    console = make_console()
    if not yes or plan.blockers:
        if as_json:
            emit_json({"dryRun": True, **run.to_json(), **plan.to_json()})
        else:
            console.print(
                f"restore {name} into namespace {spec.namespace} from {url}: step {run.step}, "
                f"{run.world_size} ranks, {run.nbytes / 2**20:.1f} MiB",
                markup=False,
            )
            for blocker in plan.blockers:
                console.print(f"  refused: {blocker}", markup=False)
            if not plan.blockers:
                console.print(
                    f"dry run: nothing applied; --yes applies the spec's {len(plan.objects)} objects with this "
                    "init container first in every pod:",
                    markup=False,
                )
                _print_yaml(plan.init_container)
        if plan.blockers:
            raise typer.Exit(REFUSED)
        return
    from contextlib import nullcontext

    from berth.cli import views

    shown = views.rollout_progress(make_console(stderr=True)) if not as_json else nullcontext(None)
    with shown as progress:
        plan = apply_archive_restore(kube, spec, plan, wait=wait, timeout_s=timeout_s, progress=progress)
    reports = seed_reports(kube, spec) if wait else {}
    if as_json:
        emit_json({"dryRun": False, **run.to_json(), **plan.to_json(), "seeded": reports})
        return
    console.print(f"applied {len(plan.results)} objects of {name} in {spec.namespace}", markup=False)
    for pod, message in sorted(reports.items()):
        try:
            got = json.loads(message)
            line = f"{got['action']} step {got['step']} ({got['bytesFetched']} bytes fetched, {got['bytesKept']} kept)"
        except (ValueError, KeyError, TypeError):
            line = message.strip()[-200:]
        console.print(f"  {pod}: {line}", markup=False)
    if plan.state is not None:
        console.print(
            f"{name} ready: {plan.state.ready_replicas}/{plan.state.replicas} pods, resuming from step {run.step}",
            markup=False,
        )


def seed(
    directory: str = typer.Argument(..., help="The rank's checkpoint directory (BERTH_CHECKPOINT_DIR)."),
    source: str = typer.Option(..., "--from", help="s3://bucket/prefix of the archive."),
    rank: int = typer.Option(..., "--rank", min=0, help="This pod's rank."),
    world: int = typer.Option(..., "--world", min=1, help="Ranks of the run (the StatefulSet's replicas)."),
    report: str | None = typer.Option(None, "--report", help="Also write the JSON report here (termination log)."),
    output: Output = OUTPUT,
) -> None:
    """In-pod: fill DIR with this rank's shard of the archive's newest step every rank has (verified, resumable).

    Nothing is downloaded when DIR already holds that step or a newer one. Exit 1 when the archive
    cannot be read, 3 when it holds no step every rank has.
    """
    from pathlib import Path

    from berth.runtime.archive import parse_url
    from berth.runtime.seed import seed_rank

    parse_url(source)
    if rank >= world:
        from berth.errors import UsageError

        raise UsageError(f"--rank {rank} is not below --world {world}")
    done = seed_rank(Path(directory), source, rank, world)
    body = done.to_json()
    if report:
        Path(report).write_text(json.dumps(body, sort_keys=True))
    if output is Output.json:
        emit_json(body)
    else:
        typer.echo(
            f"rank {rank}: {done.action} step {done.step} in {directory} "
            f"({done.bytes_fetched} bytes fetched, {done.bytes_kept} kept, {done.seconds:.1f}s)"
        )


def _print_yaml(obj: object) -> None:
    import yaml

    typer.echo(yaml.safe_dump(obj, sort_keys=False).rstrip())


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    for command in (backup, backups, restore, seed):
        app.command()(command)
