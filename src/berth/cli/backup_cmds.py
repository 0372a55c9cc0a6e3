"""Backup commands: backup, backups (list), restore; Velero does the copying, berth the choosing and checking."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    None, "-n", "--namespace", help="Namespace to restore into (default: the one the backup was taken in)."
)
REFUSED = 3  # docs/cli.md: refused, nothing written; the cluster's state forbids the change
WAIT = typer.Option(True, "--wait/--no-wait", help="Wait until Velero reports a final phase.")


def _progress(shown: bool) -> Callable[[Operation], None] | None:
    if not shown:
        return None
    err = make_console(stderr=True)
    return lambda op: err.print(f"{op.kind} {op.name}: {op.summary()}", markup=False)


def _finish(op: Operation, output: Output) -> None:
    """Print the final state; a phase other than Completed exits 1 with Velero's reason."""
    if output is Output.json:
        emit_json(op.to_json())
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
    wait: bool = WAIT,
    timeout: str = TIMEOUT,
    velero_namespace: str | None = VELERO_NAMESPACE,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Back up cluster NAME with Velero: its objects and claims (by its labels), volumes as snapshots."""
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
    if dry_run:
        if output is Output.json:
            emit_json({"dryRun": True, **plan.to_json()})
        else:
            _print_yaml(plan.obj)
        return
    op = create(kube, plan.obj)
    err.print(
        f"created Backup {op.namespace}/{op.name} of {name} in {kube.namespace} ({len(plan.claims)} claims)",
        markup=False,
    )
    if wait:
        op = wait_for(kube, "Backup", op.name, op.namespace, timeout_s=timeout_s, progress=_progress(True))
    _finish(op, output)


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
    from_backup: str = typer.Option(..., "--from-backup", "--from", help="The Velero Backup to restore from."),
    yes: bool = typer.Option(False, "--yes", help="Really create the Restore (default: only check and show it)."),
    restore_name: str | None = typer.Option(None, "--restore-name", help="Name of the Restore (default: BACKUP-TIME)."),
    wait: bool = WAIT,
    timeout: str = TIMEOUT,
    velero_namespace: str = VELERO_NAMESPACE_NAMED,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = TARGET_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Restore cluster NAME from a Velero backup: objects and volumes. Dry run without --yes.

    Refused while the cluster runs or its claims exist in the target namespace (Velero would skip
    them and keep their current data), or the backup is unfinished: exit 3, nothing written. Exit 1
    when Velero ends in any phase but Completed.
    """
    from berth.kube.backup import create, plan_restore, require_velero
    from berth.kube.backup import wait as wait_for

    timeout_s = timeout_seconds(timeout)
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


def _print_yaml(obj: object) -> None:
    import yaml

    typer.echo(yaml.safe_dump(obj, sort_keys=False).rstrip())


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    for command in (backup, backups, restore):
        app.command()(command)
