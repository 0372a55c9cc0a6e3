"""Cluster commands: plan, up, status, scale, gc, down (kubeconfig, --context and -n like kubectl)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import typer

from berth.cli import views
from berth.cli.options import (
    CLUSTER_NAME,
    CONTEXT,
    KUBECONFIG,
    NAME_NAMESPACE,
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

if TYPE_CHECKING:
    from berth.kube.status import ClusterState
    from berth.kube.wait import Readiness


def plan(
    spec: str = SPEC,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = SPEC_NAMESPACE,
    output: Output = OUTPUT,
    lint: bool = typer.Option(True, "--lint/--no-lint", help="Lint the rendered objects first."),
) -> None:
    """Show what `berth up` would change: server-side dry-run and a per-object diff. Read-only."""
    from berth.kube.plan import plan as make_plan

    tc = load_spec_in(spec, namespace)
    kube = connect(kubeconfig, context, tc.namespace)
    result = make_plan(kube, tc, lint=lint)
    if output is Output.json:
        emit_json(result.to_json())
        if result.refusal is not None:
            raise result.refusal
        return
    console = make_console()
    for f in result.findings:
        console.print(f"  lint {f['severity']}: {f['kind']} {f['name']}: {f['message']} [{f['rule']}]", markup=False)
    verbs = {
        "create": "create",
        "update": "update",
        "unchanged": "unchanged",
        "skipped": "skip",
        "leftover": "leftover",
    }
    for r in result.results:
        views.result_line(console, r, verbs)
    counts: Counter[str] = Counter(r.action for r in result.results)
    counts["skipped"] -= len(result.conflicts)  # conflicting classes are skip rows too; counted on their own
    counts["conflicting"] = len(result.conflicts)
    extra = "".join(
        f", {counts[action]} {action}" for action in ("skipped", "leftover", "conflicting") if counts[action]
    )
    console.print(f"{result.changes} to change, {counts['unchanged']} unchanged{extra}", markup=False)
    if result.refusal is not None:
        # The whole plan is shown first; then the error `berth up` would stop with, and its exit code.
        raise result.refusal


def up(
    spec: str = SPEC,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until pods are Ready and claims Bound."),
    timeout: str = TIMEOUT,
    force_conflicts: bool = typer.Option(
        False, "--force-conflicts", help="Take ownership of fields another manager changed."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Delete objects an older spec created and this one "
        "no longer renders (never volumes or protected objects).",
    ),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = SPEC_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Create or update the cluster with server-side apply, then wait for the rollout."""
    from berth.kube.preflight import refuse_operator_managed
    from berth.kube.up import up as do_up

    as_json = output is Output.json
    timeout_s = timeout_seconds(timeout)
    tc = load_spec_in(spec, namespace)
    kube = connect(kubeconfig, context, tc.namespace)
    refuse_operator_managed(kube, tc.name, tc.namespace, "up")
    console = make_console()
    verbs = {
        "create": "created",
        "update": "updated",
        "unchanged": "unchanged",
        "skipped": "skipped",
        "leftover": "leftover",
        "pruned": "deleted",
    }
    with _progress(not as_json) as progress:
        result = do_up(
            kube,
            tc,
            force=force_conflicts,
            wait=wait,
            timeout_s=timeout_s,
            prune=prune,
            progress=progress,
            on_result=None if as_json else lambda r: views.result_line(console, r, verbs),
        )
    if as_json:
        emit_json(result.to_json())
        return
    if not result.changed:
        console.print(f"nothing changed: {tc.name} in {tc.namespace} already matches the spec", markup=False)
    if result.state is not None:
        console.print(
            f"{tc.name} ready: {result.state.ready_replicas}/{result.state.replicas} pods, "
            f"{sum(1 for c in result.state.claims if c.phase == 'Bound')} claims Bound",
            markup=False,
        )


def status(
    name: str = CLUSTER_NAME,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Pods, claims (orphans and >85 % full flagged, used space from the kubelets), rollout; constant API calls."""
    from berth.kube.status import collect

    kube = connect(kubeconfig, context, namespace)
    state = collect(kube, name, kube.namespace, volume_stats=True)
    if output is Output.json:
        emit_json({**state.to_json(), "apiRequests": kube.requests})
        return
    views.print_state(make_console(), state)


def scale(
    name: str = CLUSTER_NAME,
    replicas: int = typer.Argument(..., min=1, help="New number of pods (the world size, at least 1)."),
    wait: bool = typer.Option(False, "--wait/--no-wait", help="Wait until the new set is ready."),
    timeout: str = TIMEOUT,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Change the replica count; the world size in every pod follows (pods restart from checkpoints)."""
    from berth.kube.scale import scale as do_scale

    timeout_s = timeout_seconds(timeout)
    kube = connect(kubeconfig, context, namespace)
    with _progress(output is Output.text) as progress:
        result = do_scale(kube, name, kube.namespace, replicas, wait=wait, timeout_s=timeout_s, progress=progress)
    if output is Output.json:
        emit_json(result.to_json())
        return
    console = make_console()
    if result.before == result.after:
        console.print(f"{name} already has {result.after} replicas: nothing changed", markup=False)
    else:
        console.print(f"scaled {name} from {result.before} to {result.after} replicas", markup=False)
    if result.restarts:
        console.print(
            "the world size (BERTH_REPLICAS) is part of the pod template: every pod restarts "
            "and resumes from its latest checkpoint",
            markup=False,
        )
    if result.left_behind:
        if result.when_scaled == "Delete":
            console.print(
                "the controller deletes these claims (whenScaled: Delete) once their pods are gone:", markup=False
            )
        else:
            console.print(
                "claims left behind (whenScaled: Retain; a later scale-up reuses them, "
                f"`berth gc {name}` removes them):",
                markup=False,
            )
        for c in result.left_behind:
            console.print(f"  {c.name} ({views.size(c.capacity or c.requested)})", markup=False)


def gc(
    name: str = CLUSTER_NAME,
    yes: bool = typer.Option(False, "--yes", help="Really delete (default: only list)."),
    delete_released_volumes: bool = typer.Option(
        False,
        "--delete-released-volumes",
        help="Also delete Released PersistentVolumes (reclaim Retain) whose claim of this cluster is gone.",
    ),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """List claims orphaned by scale-down and released disks; delete with --yes. Never mounted or protected ones."""
    from berth.kube.gc import collect_garbage, released_volumes

    kube = connect(kubeconfig, context, namespace)
    state, verdicts = collect_garbage(kube, name, kube.namespace, yes=yes)
    volumes = released_volumes(kube, state, delete_released=delete_released_volumes, yes=yes)
    if output is Output.json:
        emit_json(
            {
                "dryRun": not yes,
                "claims": [v.to_json() for v in verdicts],
                "releasedVolumes": [v.to_json() for v in volumes],
            }
        )
        return
    console = make_console()
    views.print_deletions(
        console,
        [
            (
                v.delete,
                v.deleted,
                views.claim_label(v.claim.name, v.claim.capacity or v.claim.requested, v.claim.age_s),
                v.reason,
            )
            for v in verdicts
        ],
        yes=yes,
        nothing=f"no orphaned claims for {name} in {kube.namespace}",
    )
    if volumes:
        console.print("released volumes (their claims are gone; a Retain class keeps the disk):", markup=False)
        views.print_deletions(
            console,
            [
                (
                    v.delete,
                    v.deleted,
                    f"PersistentVolume {views.claim_label(v.name, v.size, v.age_s)} of {v.claim}",
                    v.reason,
                )
                for v in volumes
            ],
            yes=yes,
            nothing="none deleted: pass --delete-released-volumes",
        )


def down(
    name: str = CLUSTER_NAME,
    delete_volumes: bool = typer.Option(False, "--delete-volumes", help="Also delete the claims (data!)."),
    yes: bool = typer.Option(False, "--yes", help="Really delete (default: only list)."),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Remove what `berth up` created; volumes are kept unless --delete-volumes. Dry run without --yes."""
    from berth.kube.down import down as do_down
    from berth.kube.preflight import refuse_operator_managed

    kube = connect(kubeconfig, context, namespace)
    refuse_operator_managed(kube, name, kube.namespace, "down")
    removals = do_down(kube, name, kube.namespace, delete_volumes=delete_volumes, yes=yes)
    if output is Output.json:
        emit_json({"dryRun": not yes, "objects": [r.to_json() for r in removals]})
        return
    views.print_deletions(
        make_console(),
        [
            (r.delete, r.deleted, f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}", r.reason)
            for r in removals
        ],
        yes=yes,
        nothing=f"nothing of {name} to remove in {kube.namespace}",
    )


def _progress(shown: bool) -> AbstractContextManager[Callable[[ClusterState, Readiness], None] | None]:
    """The rollout view on stderr (stdout stays one document for -o json), or no callback at all."""
    return views.rollout_progress(make_console(stderr=True)) if shown else nullcontext(None)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    for command in (plan, up, status, scale, gc, down):
        app.command()(command)
