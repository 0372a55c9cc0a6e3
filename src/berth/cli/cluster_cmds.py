"""Cluster commands: plan, up, status, scale, gc, down (kubeconfig, --context and -n like kubectl)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from berth.kube.apply import ObjectResult
    from berth.kube.client import Kube
    from berth.kube.status import ClusterState
    from berth.spec.model import TrainingCluster

_KUBECONFIG = typer.Option(None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).")
_CONTEXT = typer.Option(None, "--context", help="Kubeconfig context (default: current-context).")
_NAMESPACE = typer.Option(None, "-n", "--namespace", help="Namespace (default: the spec's, else the context's).")
_OUTPUT = typer.Option("text", "-o", "--output", help="text or json.")
_TIMEOUT = typer.Option("300", "--timeout", help="How long to wait: seconds or a duration such as 5m.")


def _duration(text: str) -> float:
    from berth.errors import UsageError

    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"--timeout {text!r} is not a duration", "use seconds (300) or 5m, 1h30m, 90s")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def _check_output(output: str) -> bool:
    from berth.errors import UsageError

    if output not in ("text", "json"):
        raise UsageError(f"-o {output!r}: expected text or json")
    return output == "json"


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 220  # piped into a file or grep: never truncate table columns
    return console


def _connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    from berth.kube.client import Target, connect

    return connect(Target(kubeconfig, context, namespace))


def _load(path: str, namespace: str | None) -> TrainingCluster:
    from berth.spec.load import load_spec

    spec = load_spec(path)
    if namespace:
        spec.metadata.namespace = namespace
    return spec


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


_MARK = {"create": "+", "update": "~", "unchanged": "=", "skipped": "!", "leftover": "?", "pruned": "-"}


def _result_line(console: Console, r: ObjectResult, verb: dict[str, str]) -> None:
    line = f"  {_MARK[r.action]} {r.ref}: {verb[r.action]}"
    if r.changed:
        line += f" ({', '.join(r.changed[:6])}{', …' if len(r.changed) > 6 else ''})"
    if r.note:
        line += f" — {r.note}"
    console.print(line, markup=False)


def _size(value: str | None) -> str:
    return value or "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{int(seconds // span)}{unit}"
    return f"{int(seconds)}s"


def _print_state(console: Console, state: ClusterState) -> None:
    from rich.table import Table

    console.print(f"{state.name} in {state.namespace}: {state.ready_replicas}/{state.replicas} ready, "
                  f"rollout {state.rollout}, revision {state.update_revision or '-'}", markup=False)
    pods = Table("ordinal", "pod", "phase", "ready", "node", "zone", "restarts", "reason", box=None)
    for p in state.pods:
        pods.add_row(str(p.ordinal), p.name, p.phase, "yes" if p.ready else "no", p.node or "-", p.zone or "-",
                     str(p.restarts), p.reason or "")
    console.print(pods)
    claims = Table("template", "ordinal", "claim", "phase", "class", "requested", "capacity", "volume", "",
                   box=None)
    for c in [*state.claims, *state.shared]:
        flag = "ORPHANED" if c.orphaned else ("shared" if c.template is None else "")
        if c.protected:
            flag = (flag + " protected").strip()
        claims.add_row(c.template or "-", "-" if c.ordinal is None else str(c.ordinal), c.name, c.phase,
                       c.storage_class or "-", _size(c.requested), _size(c.capacity), c.volume or "-", flag)
    console.print(claims)
    if state.orphans:
        console.print(f"{len(state.orphans)} orphaned claim(s) from scale-down: `berth gc {state.name} "
                      f"-n {state.namespace}` lists them", markup=False)
    for note in state.notes:
        console.print(f"note: {note}", markup=False)


def _print_deletions(rows: list[tuple[bool, bool, str, str]], *, yes: bool, nothing: str) -> None:
    """One line per object: deleted / would delete / keep, and why; the dry-run reminder."""
    console = _console()
    for delete, deleted, what, reason in rows:
        verb = ("deleted" if deleted else "would delete") if delete else "keep"
        console.print(f"  {verb} {what}: {reason}", markup=False)
    doomed = sum(1 for row in rows if row[0])
    if not doomed:
        console.print(nothing, markup=False)
    elif not yes:
        console.print(f"dry run: {doomed} would be deleted; rerun with --yes to delete", markup=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command()
    def plan(
        spec: str = typer.Argument(..., help="The berth spec (berth.yaml)."),
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
        lint: bool = typer.Option(True, "--lint/--no-lint", help="Lint the rendered objects first."),
    ) -> None:
        """Show what `berth up` would change: server-side dry-run and a per-object diff. Read-only."""
        from berth.kube.plan import plan as make_plan

        as_json = _check_output(output)
        tc = _load(spec, namespace)
        kube = _connect(kubeconfig, context, tc.namespace)
        result = make_plan(kube, tc, lint=lint)
        if as_json:
            _emit_json(result.to_json())
            return
        console = _console()
        for f in result.findings:
            console.print(f"  lint {f['severity']}: {f['kind']} {f['name']}: {f['message']} [{f['rule']}]",
                          markup=False)
        verbs = {"create": "create", "update": "update", "unchanged": "unchanged", "skipped": "skip",
                 "leftover": "leftover"}
        for r in result.results:
            _result_line(console, r, verbs)
        counts = Counter(r.action for r in result.results)
        extra = "".join(f", {counts[action]} {action}" for action in ("skipped", "leftover") if counts[action])
        console.print(f"{result.changes} to change, {counts['unchanged']} unchanged{extra}", markup=False)

    @app.command()
    def up(
        spec: str = typer.Argument(..., help="The berth spec (berth.yaml)."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until pods are Ready and claims Bound."),
        timeout: str = _TIMEOUT,
        force_conflicts: bool = typer.Option(False, "--force-conflicts",
                                             help="Take ownership of fields another manager changed."),
        prune: bool = typer.Option(False, "--prune", help="Delete objects an older spec created and this one "
                                   "no longer renders (never volumes or protected objects)."),
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
    ) -> None:
        """Create or update the cluster with server-side apply, then wait for the rollout."""
        from berth.kube.up import up as do_up

        as_json = _check_output(output)
        timeout_s = _duration(timeout)
        tc = _load(spec, namespace)
        kube = _connect(kubeconfig, context, tc.namespace)
        console = _console()
        verbs = {"create": "created", "update": "updated", "unchanged": "unchanged", "skipped": "skipped",
                 "leftover": "leftover", "pruned": "deleted"}
        result = do_up(kube, tc, force=force_conflicts, wait=wait, timeout_s=timeout_s, prune=prune,
                       console=None if as_json else _console(stderr=True),
                       on_result=None if as_json else lambda r: _result_line(console, r, verbs))
        if as_json:
            _emit_json(result.to_json())
            return
        if not result.changed:
            console.print(f"nothing changed: {tc.name} in {tc.namespace} already matches the spec", markup=False)
        if result.state is not None:
            console.print(f"{tc.name} ready: {result.state.ready_replicas}/{result.state.replicas} pods, "
                          f"{sum(1 for c in result.state.claims if c.phase == 'Bound')} claims Bound", markup=False)

    @app.command()
    def status(
        name: str = typer.Argument(..., help="Training cluster (StatefulSet) name."),
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
    ) -> None:
        """Pods, claims (orphans flagged), revision and rollout state, in a constant number of API calls."""
        from berth.kube.status import collect

        as_json = _check_output(output)
        kube = _connect(kubeconfig, context, namespace)
        state = collect(kube, name, kube.namespace)
        if as_json:
            _emit_json({**state.to_json(), "apiRequests": kube.requests})
            return
        _print_state(_console(), state)

    @app.command()
    def scale(
        name: str = typer.Argument(..., help="Training cluster (StatefulSet) name."),
        replicas: int = typer.Argument(..., min=1, help="New number of pods (the world size, at least 1)."),
        wait: bool = typer.Option(False, "--wait/--no-wait", help="Wait until the new set is ready."),
        timeout: str = _TIMEOUT,
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
    ) -> None:
        """Change the replica count; the world size in every pod follows (pods restart from checkpoints)."""
        from berth.kube.scale import scale as do_scale

        as_json = _check_output(output)
        timeout_s = _duration(timeout)
        kube = _connect(kubeconfig, context, namespace)
        result = do_scale(kube, name, kube.namespace, replicas, wait=wait, timeout_s=timeout_s,
                          console=None if as_json else _console(stderr=True))
        if as_json:
            _emit_json(result.to_json())
            return
        console = _console()
        if result.before == result.after:
            console.print(f"{name} already has {result.after} replicas: nothing changed", markup=False)
        else:
            console.print(f"scaled {name} from {result.before} to {result.after} replicas", markup=False)
        if result.restarts:
            console.print("the world size (BERTH_REPLICAS) is part of the pod template: every pod restarts "
                          "and resumes from its latest checkpoint", markup=False)
        if result.left_behind:
            if result.when_scaled == "Delete":
                console.print("the controller deletes these claims (whenScaled: Delete) once their pods are gone:",
                              markup=False)
            else:
                console.print("claims left behind (whenScaled: Retain; a later scale-up reuses them, "
                              f"`berth gc {name}` removes them):", markup=False)
            for c in result.left_behind:
                console.print(f"  {c.name} ({_size(c.capacity or c.requested)})", markup=False)

    @app.command()
    def gc(
        name: str = typer.Argument(..., help="Training cluster (StatefulSet) name."),
        yes: bool = typer.Option(False, "--yes", help="Really delete (default: only list)."),
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
    ) -> None:
        """List claims orphaned by scale-down; delete them with --yes. Never mounted or protected ones."""
        from berth.kube.gc import collect_garbage

        as_json = _check_output(output)
        kube = _connect(kubeconfig, context, namespace)
        _, verdicts = collect_garbage(kube, name, kube.namespace, yes=yes)
        if as_json:
            _emit_json({"dryRun": not yes, "claims": [v.to_json() for v in verdicts]})
            return
        _print_deletions(
            [(v.delete, v.deleted, f"{v.claim.name} ({_size(v.claim.capacity or v.claim.requested)}, "
              f"age {_age(v.claim.age_s)})", v.reason) for v in verdicts],
            yes=yes, nothing=f"no orphaned claims for {name} in {kube.namespace}")

    @app.command()
    def down(
        name: str = typer.Argument(..., help="Training cluster (StatefulSet) name."),
        delete_volumes: bool = typer.Option(False, "--delete-volumes", help="Also delete the claims (data!)."),
        yes: bool = typer.Option(False, "--yes", help="Really delete (default: only list)."),
        kubeconfig: str | None = _KUBECONFIG,
        context: str | None = _CONTEXT,
        namespace: str | None = _NAMESPACE,
        output: str = _OUTPUT,
    ) -> None:
        """Remove what `berth up` created; volumes are kept unless --delete-volumes. Dry run without --yes."""
        from berth.kube.down import down as do_down

        as_json = _check_output(output)
        kube = _connect(kubeconfig, context, namespace)
        removals = do_down(kube, name, kube.namespace, delete_volumes=delete_volumes, yes=yes)
        if as_json:
            _emit_json({"dryRun": not yes, "objects": [r.to_json() for r in removals]})
            return
        _print_deletions(
            [(r.delete, r.deleted, f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}", r.reason)
             for r in removals],
            yes=yes, nothing=f"nothing of {name} to remove in {kube.namespace}")
