"""Spec commands: render, schema, init, explain."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from berth.cli.options import OUTPUT, Output, emit_json
from berth.errors import UsageError

_FRAMEWORKS = ("tensorflow", "pytorch", "horovod", "jax", "none")


def _no_output_format(value: str | None) -> None:
    """``render -o DIR`` was the directory before ``-o`` meant the output format everywhere: say so."""
    if value is not None:
        raise UsageError(
            "render has no -o: it prints YAML, and -o is the output format of other commands (text or json)",
            f"write one file per object with --out-dir {value}",
        )


def render(
    spec: Path = typer.Argument(..., help="berth.yaml (or - for stdin)", allow_dash=True),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Write one file per object and a kustomization.yaml into this directory."
    ),
    old_output: str | None = typer.Option(None, "-o", hidden=True, callback=_no_output_format),
) -> None:
    """Render SPEC to Kubernetes objects: YAML on stdout, in apply order."""
    from berth.render import render_all
    from berth.render.output import to_stream, write_dir
    from berth.spec.load import load_spec

    objects = render_all(load_spec(spec))
    if out_dir is None:
        typer.echo(to_stream(objects), nl=False)
        return
    _check_writable_dir(out_dir)
    try:
        written = write_dir(objects, out_dir)
    except OSError as err:
        raise UsageError(f"cannot write to {out_dir}: {err.strerror}", "pick a directory you can write") from None
    typer.echo(f"wrote {len(written)} files to {out_dir}", err=True)


def _check_writable_dir(directory: Path) -> None:
    """A directory ``--out-dir`` can create or fill: none of it, nor any parent, is a regular file."""
    for path in (directory, *directory.parents):
        if path.exists():
            if not path.is_dir():
                where = "exists" if path == directory else f"is inside {path}, which exists"
                raise UsageError(
                    f"--out-dir {directory} {where} and is not a directory",
                    "pick a directory (it is created if missing)",
                )
            return


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
    if framework not in _FRAMEWORKS:
        raise UsageError(f"unknown framework {framework!r}", f"one of {', '.join(_FRAMEWORKS)}")
    text = _starter(framework, name, storage_class)
    if str(path) == "-":
        typer.echo(text, nl=False)
        return
    if path.is_dir():
        raise UsageError(f"{path} is a directory", f"give a file path, e.g. {path / 'berth.yaml'}")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", "pass --force to overwrite it, or another path")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: {path.parent} is not a directory", "pick another path")
    if not path.parent.exists():
        raise UsageError(
            f"cannot write {path}: {path.parent} does not exist",
            f"create the directory first (mkdir -p {path.parent}) or pick another path",
        )
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}", "pick another path") from None
    typer.echo(f"wrote {path}; next: berth explain {path}", err=True)


def _starter(framework: str, name: str, storage_class: str | None) -> str:
    """The starter spec, checked by the spec's own loader: a bad --name is refused before anything is written."""
    from berth.spec.errors import SpecError
    from berth.spec.load import parse_spec
    from berth.spec.starter import starter_spec

    text = starter_spec(framework, name, storage_class)
    try:
        parse_spec(text)
    except SpecError as err:
        first = err.issues[0]
        if first.path[:2] == ("metadata", "name"):
            raise UsageError(f"--name {name!r}: {first.message}", f"e.g. --name {_suggest_name(name)}") from None
        raise UsageError(f"--storage-class {storage_class!r}: {first.message}", first.hint) from None
    return text


def _suggest_name(name: str) -> str:
    """A valid cluster name close to ``name``: lower case, '-' for anything else, trimmed to 52 characters."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower())[:52].strip("-")
    return cleaned or "training"


def explain(
    spec: Path = typer.Argument(..., help="berth.yaml (or - for stdin)", allow_dash=True),
    output: Output = OUTPUT,
) -> None:
    """Say in plain words what SPEC creates and why, one line per object."""
    from berth.render import render_all
    from berth.render.explain import explain_objects
    from berth.spec.load import load_spec

    loaded = load_spec(spec)
    lines = explain_objects(loaded, render_all(loaded))
    if output is Output.json:
        emit_json([{"kind": k, "name": n, "why": w} for k, n, w in lines])
        return
    width = max(len(f"{k}/{n}") for k, n, _ in lines)
    for kind, name, why in lines:
        typer.echo(f"{f'{kind}/{name}':<{width}}  {why}")


def register(app: typer.Typer) -> None:
    """Add render, schema, init and explain to the root app."""
    for command in (render, schema, init, explain):
        app.command()(command)
