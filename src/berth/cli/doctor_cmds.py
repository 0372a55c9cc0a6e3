"""``berth doctor``: findings about a running training cluster (flags like the cluster commands)."""

from __future__ import annotations

import typer

from berth.cli.cluster_cmds import (
    _CONTEXT,
    _KUBECONFIG,
    _NAMESPACE,
    _OUTPUT,
    _check_output,
    _connect,
    _console,
    _emit_json,
)

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    """Add doctor to the root app."""
    app.command("doctor")(doctor)


def doctor(
    name: str = typer.Argument(..., help="training cluster (StatefulSet) name"),
    kubeconfig: str | None = _KUBECONFIG,
    context: str | None = _CONTEXT,
    namespace: str | None = _NAMESPACE,
    output: str = _OUTPUT,
) -> None:
    """Diagnose NAME: Pending pods and claims, zone mismatches, mount failures, orphans, drain blockers.

    Exits 1 when an error-level finding is present, so scripts can gate on it.
    """
    from rich.markup import escape

    from berth.kube.doctor import diagnose, gather

    as_json = _check_output(output)
    kube = _connect(kubeconfig, context, namespace)
    try:
        facts = gather(kube, name, kube.namespace)
    finally:
        kube.close()
    findings = diagnose(facts)
    if as_json:
        _emit_json({"name": name, "namespace": facts.state.namespace, "findings": [f.to_json() for f in findings]})
    else:
        console = _console()
        st = facts.state
        console.print(f"{name} in {st.namespace}: {st.ready_replicas}/{st.replicas} ready, rollout {st.rollout}",
                      markup=False)
        if not findings:
            console.print("no problems found", style="green")
        for f in findings:
            # Object names and problems come from the cluster: never read them as rich markup.
            console.print(f"[{_STYLE[f.severity]}]{f.severity:7}[/] {escape(f.object)}: {escape(f.problem)}")
            console.print(f"         evidence: {f.evidence}", markup=False)
            console.print(f"         fix: {f.fix}", markup=False)
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)
