"""``berth operator``: the TrainingCluster CRD, the controller process and its install manifests.

kopf (the ``operator`` extra) is imported only inside ``berth operator run``, so ``berth --help``
and every other command start without it (docs/operator.md).
"""

from __future__ import annotations

import typer

from berth.cli.options import CONTEXT, KUBECONFIG, OUTPUT, Output, emit_json

operator_app = typer.Typer(
    name="operator",
    help="TrainingCluster as a Kubernetes API: the CRD, the controller, its install manifests.",
    no_args_is_help=True,
)


def crd(output: Output = OUTPUT) -> None:
    """Print the TrainingCluster CustomResourceDefinition, generated from the spec model (YAML; -o json)."""
    from berth.operator import crd as gen

    if output is Output.json:
        emit_json(gen.crd())
    else:
        typer.echo(gen.crd_yaml(), nl=False)


def chart(
    directory: str = typer.Argument(..., help="Write the chart here, e.g. charts/berth-operator."),
) -> None:
    """Write the Helm chart: the install manifests as templates, the CRD under crds/ (docs/operator.md)."""
    from pathlib import Path

    from berth.operator.chart import files

    root = Path(directory)
    for name, text in files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(str(path))


def _seconds(flag: str, text: str) -> float:
    from berth.errors import UsageError
    from berth.quantity import QuantityError, parse_duration

    try:
        return parse_duration(text, bare_seconds=True)
    except QuantityError as err:
        raise UsageError(f"{flag}: {err}", f"e.g. {flag} 15s") from None


def run(
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: list[str] = typer.Option(
        [], "-n", "--namespace", help="Watch only these namespaces (repeatable; default: the whole cluster)."
    ),
    resync: str = typer.Option("30s", "--resync", help="Re-apply and refresh status this often (drift correction)."),
    standalone: bool = typer.Option(
        False, "--standalone", help="No leader election: act even if another operator runs (a laptop, a test)."
    ),
    lease_namespace: str | None = typer.Option(
        None,
        "--lease-namespace",
        help="Namespace of the leader-election Lease (default: the context's, in a pod its own).",
    ),
    lease_name: str = typer.Option("berth-operator", "--lease-name", help="Name of the leader-election Lease."),
    identity: str | None = typer.Option(
        None, "--identity", help="This replica's name in the Lease (default: host_random)."
    ),
    lease_duration: str = typer.Option(
        "15s", "--lease-duration", help="A standby takes over after this long unrenewed."
    ),
    renew_deadline: str = typer.Option(
        "10s", "--renew-deadline", help="The leader exits (code 3) if not renewed by then."
    ),
    retry_period: str = typer.Option("2s", "--retry-period", help="How often to renew, or to try to acquire."),
    liveness: str | None = typer.Option(
        None, "--liveness", help="Serve a liveness probe, e.g. http://0.0.0.0:8080/healthz."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log kopf's debug lines too: every patch, its retries, each cycle."
    ),
) -> None:
    """Run the controller: reconcile TrainingCluster objects until interrupted (needs the `operator` extra).

    Replicas elect a leader with a Lease; only the leader reconciles (docs/operator.md).
    """
    import os
    import socket
    import uuid

    from berth.errors import BerthError
    from berth.kube.client import RetryPolicy, Target, connect
    from berth.operator.incluster import kubeconfig_for_pod

    try:
        from berth.operator.controller import run_operator
        from berth.operator.leader import LeaseElector
    except ImportError:
        raise BerthError("berth operator run needs kopf", "pip install 'berth[operator]'") from None
    resync_s = _seconds("--resync", resync)
    path = kubeconfig or kubeconfig_for_pod()
    if path:
        os.environ["KUBECONFIG"] = path  # kopf logs in from the same file berth's client reads
    target = Target(path, context, None)
    kube = connect(target)
    elector = None
    if not standalone:
        renew_s = _seconds("--renew-deadline", renew_deadline)
        elector = LeaseElector(
            # No retries and short timeouts: a renewal stuck past the deadline must not keep a leader.
            connect(target, retry=RetryPolicy(budget_s=0), timeout_s=max(1.0, renew_s / 2)),
            name=lease_name,
            namespace=lease_namespace or kube.namespace,
            identity=identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
            lease_s=_seconds("--lease-duration", lease_duration),
            renew_s=renew_s,
            retry_s=_seconds("--retry-period", retry_period),
        )
    run_operator(
        kube, namespaces=list(namespace), resync_s=resync_s, elector=elector, liveness=liveness, verbose=verbose
    )


def install(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the manifests instead of applying them."),
    namespace: str = typer.Option("berth-system", "--operator-namespace", help="Where the operator runs."),
    image: str = typer.Option("ghcr.io/berth-dev/berth:latest", "--image", help="The operator's image."),
    replicas: int = typer.Option(2, "--replicas", help="Operator replicas (a Lease elects the one that acts)."),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    output: Output = OUTPUT,
) -> None:
    """Install the operator: Namespace, CRDs, ServiceAccount, ClusterRole(+Binding), Deployment."""
    from berth.operator.manifests import manifests

    objects = manifests(namespace=namespace, image=image, replicas=replicas)
    if dry_run:
        if output is Output.json:
            emit_json({"apiVersion": "v1", "kind": "List", "items": objects})
        else:
            import yaml

            typer.echo(yaml.safe_dump_all(objects, sort_keys=False, width=120), nl=False)
        return
    from berth.cli.options import connect
    from berth.kube.apply import apply_objects

    kube = connect(kubeconfig, context, None)
    for result in apply_objects(kube, objects, force=True):
        if output is Output.text:
            typer.echo(f"{result.ref}: {result.action}")
    if output is Output.json:
        emit_json({"namespace": namespace, "image": image})


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    operator_app.command()(crd)
    operator_app.command()(run)
    operator_app.command()(install)
    operator_app.command()(chart)
    app.add_typer(operator_app)
