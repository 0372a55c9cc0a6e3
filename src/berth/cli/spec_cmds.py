"""Spec commands: render, schema, init, explain."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from berth.errors import UsageError

_FRAMEWORKS = ("tensorflow", "pytorch", "horovod", "jax", "none")


def register(app: typer.Typer) -> None:
    """Add render, schema, init and explain to the root app."""
    app.command("render")(render)
    app.command("schema")(schema)
    app.command("init")(init)
    app.command("explain")(explain)


def render(
    spec: Path = typer.Argument(..., help="berth.yaml (or - for stdin)", allow_dash=True),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="write one file per object and a kustomization.yaml here"
    ),
) -> None:
    """Render SPEC to Kubernetes objects: YAML on stdout, in apply order."""
    from berth.render import render_all
    from berth.render.output import to_stream, write_dir
    from berth.spec.load import load_spec

    objects = render_all(load_spec(spec))
    if output_dir is None:
        typer.echo(to_stream(objects), nl=False)
        return
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir} exists and is not a directory", "pick a directory for -o")
    written = write_dir(objects, output_dir)
    typer.echo(f"wrote {len(written)} files to {output_dir}", err=True)


def schema() -> None:
    """Print the spec's JSON Schema (for editors' YAML completion)."""
    from berth.spec.model import TrainingCluster

    doc = TrainingCluster.model_json_schema(by_alias=True, mode="validation")
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = "https://berth.dev/schemas/v1alpha1/trainingcluster.json"
    typer.echo(json.dumps(doc, indent=2))


def init(
    path: Path = typer.Argument(Path("berth.yaml"), help="where to write the starter spec"),
    framework: str = typer.Option("pytorch", "--framework", "-f", help=" | ".join(_FRAMEWORKS)),
    name: str = typer.Option("training", "--name", help="cluster name (prefix of every pod)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
    storage_class: str | None = typer.Option(
        None, "--storage-class", help="use this existing class for every volume (e.g. the sandbox's `standard`)"
    ),
) -> None:
    """Write a commented starter spec."""
    from berth.spec.starter import starter_spec

    if framework not in _FRAMEWORKS:
        raise UsageError(f"unknown framework {framework!r}", f"one of {', '.join(_FRAMEWORKS)}")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", "pass --force to overwrite it, or another path")
    text = starter_spec(framework, name, storage_class)
    if str(path) == "-":
        typer.echo(text, nl=False)
        return
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}; next: berth explain {path}", err=True)


def explain(
    spec: Path = typer.Argument(..., help="berth.yaml (or - for stdin)", allow_dash=True),
    output: str = typer.Option("text", "--output", "-o", help="text | json"),
) -> None:
    """Say in plain words what SPEC creates and why, one line per object."""
    from berth.render import render_all
    from berth.render.explain import explain_objects
    from berth.spec.load import load_spec

    loaded = load_spec(spec)
    lines = explain_objects(loaded, render_all(loaded))
    if output == "json":
        typer.echo(json.dumps([{"kind": k, "name": n, "why": w} for k, n, w in lines], indent=2))
        return
    if output != "text":
        raise UsageError(f"unknown output format {output!r}", "use -o text or -o json")
    width = max(len(f"{k}/{n}") for k, n, _ in lines)
    for kind, name, why in lines:
        typer.echo(f"{f'{kind}/{name}':<{width}}  {why}")
