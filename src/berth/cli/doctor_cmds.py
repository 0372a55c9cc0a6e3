"""``berth doctor``: findings about a running training cluster (flags like the cluster commands)."""

from __future__ import annotations

import typer

from berth.cli.options import (
    CLUSTER_NAME,
    CONTEXT,
    KUBECONFIG,
    NAME_NAMESPACE,
    OUTPUT,
    Output,
    connect,
    emit_json,
    make_console,
)

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def doctor(
    name: str = CLUSTER_NAME,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    output: Output = OUTPUT,
) -> None:
    """Diagnose NAME: Pending pods and claims, zone mismatches, mount failures, orphans, drain blockers.

    Exits 1 when an error-level finding is present, so scripts can gate on it.
    """
    from rich.markup import escape

    from berth.kube.doctor import diagnose, gather

    kube = connect(kubeconfig, context, namespace)
    try:
        facts = gather(kube, name, kube.namespace)
    finally:
        kube.close()
    findings = diagnose(facts)
    if output is Output.json:
        emit_json({"name": name, "namespace": facts.state.namespace, "findings": [f.to_json() for f in findings]})
    else:
        console = make_console()
        st = facts.state
        console.print(
            f"{name} in {st.namespace}: {st.ready_replicas}/{st.replicas} ready, rollout {st.rollout}", markup=False
        )
        if not findings:
            console.print("no problems found", style="green")
        for f in findings:
            # Object names and problems come from the cluster: never read them as rich markup.
            console.print(f"[{_STYLE[f.severity]}]{f.severity:7}[/] {escape(f.object)}: {escape(f.problem)}")
            console.print(f"         evidence: {f.evidence}", markup=False)
            console.print(f"         fix: {f.fix}", markup=False)
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add doctor to the root app."""
    app.command("doctor")(doctor)
