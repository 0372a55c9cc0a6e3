"""``berth operator``: the TrainingCluster CRD, the controller process and its install manifests.

kopf (the ``operator`` extra) is imported only inside ``berth operator run``, so ``berth --help``
and every other command start without it (docs/operator.md).
"""

from __future__ import annotations

import typer

from berth.cli.options import OUTPUT, Output, emit_json

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


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    operator_app.command()(crd)
    app.add_typer(operator_app)
