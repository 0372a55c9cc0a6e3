"""``berth operator``: the TrainingCluster CRD, the controller process and its install manifests.

kopf (the ``operator`` extra) is imported only inside ``berth operator run``, so ``berth --help``
and every other command start without it (docs/operator.md).
"""

from __future__ import annotations

import typer

from berth.cli.options import CONTEXT, KUBECONFIG, OUTPUT, Output, emit_json, timeout_seconds

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


def run(
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: list[str] = typer.Option(
        [], "-n", "--namespace", help="Watch only these namespaces (repeatable; default: the whole cluster)."
    ),
    resync: str = typer.Option("30s", "--resync", help="Re-apply and refresh status this often (drift correction)."),
    standalone: bool = typer.Option(
        False, "--standalone", help="No peering: act even if another operator runs (a laptop, a test)."
    ),
    peering: str = typer.Option("berth", "--peering", help="kopf peering name: only the highest priority acts."),
    priority: int = typer.Option(0, "--priority", help="This replica's peering priority."),
    liveness: str | None = typer.Option(
        None, "--liveness", help="Serve a liveness probe, e.g. http://0.0.0.0:8080/healthz."
    ),
) -> None:
    """Run the controller: reconcile TrainingCluster objects until interrupted (needs the `operator` extra)."""
    import os

    from berth.errors import BerthError
    from berth.kube.client import Target, connect
    from berth.operator.incluster import kubeconfig_for_pod

    try:
        from berth.operator.controller import run_operator
    except ImportError:
        raise BerthError("berth operator run needs kopf", "pip install 'berth[operator]'") from None
    resync_s = timeout_seconds(resync)
    path = kubeconfig or kubeconfig_for_pod()
    if path:
        os.environ["KUBECONFIG"] = path  # kopf logs in from the same file berth's client reads
    kube = connect(Target(path, context, None))
    run_operator(
        kube,
        namespaces=list(namespace),
        resync_s=resync_s,
        standalone=standalone,
        peering=peering,
        priority=priority,
        liveness=liveness,
    )


def install(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the manifests instead of applying them."),
    namespace: str = typer.Option("berth-system", "--operator-namespace", help="Where the operator runs."),
    image: str = typer.Option("ghcr.io/berth-dev/berth:latest", "--image", help="The operator's image."),
    replicas: int = typer.Option(2, "--replicas", help="Operator replicas (peering: one acts)."),
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
    app.add_typer(operator_app)
