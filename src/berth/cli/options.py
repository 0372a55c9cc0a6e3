"""The options and helpers every command shares, each defined once with kubectl's names and meanings.

``-o/--output`` is always the output format (:class:`Output`, checked by typer), never a path;
``-n/--namespace`` says per command where its default comes from, because commands that read
a spec default to the spec's namespace and commands that take a name cannot. Only typer and
the standard library are imported here: the CLI starts before any heavy library loads.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from berth.kube.client import Kube
    from berth.spec.model import TrainingCluster


class Output(StrEnum):
    """What ``-o`` selects: ``text`` for people, ``json`` (camelCase keys) for scripts."""

    text = "text"
    json = "json"


FormatT = TypeVar("FormatT", bound=StrEnum)


def format_option(formats: type[FormatT], *names: str) -> Any:
    """An output-format option over ``formats`` (first one the default), checked here and nowhere else.

    An unknown value is a usage error (exit 2) naming every format, like any other bad flag.
    """
    from berth.errors import UsageError

    flag = next(n for n in names if n.startswith("--"))
    choices = [f.value for f in formats]

    def parse(value: str) -> FormatT:
        try:
            return formats(value)
        except ValueError:
            raise UsageError(f"unknown {flag} {value!r}", f"use one of {', '.join(choices)}") from None

    return typer.Option(
        choices[0],
        *names,
        parser=parse,
        metavar="|".join(choices),
        help=f"Output format: {', '.join(choices[:-1])} or {choices[-1]}.",
    )


OUTPUT: Any = format_option(Output, "-o", "--output")
KUBECONFIG: Any = typer.Option(
    None, "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)."
)
CONTEXT: Any = typer.Option(None, "--context", help="Kubeconfig context (default: its current-context).")
SPEC_NAMESPACE: Any = typer.Option(
    None, "-n", "--namespace", help="Namespace (default: the spec's metadata.namespace, else the context's)."
)
NAME_NAMESPACE: Any = typer.Option(
    None, "-n", "--namespace", help="Namespace of the training cluster (default: the context's namespace)."
)
TIMEOUT: Any = typer.Option("300", "--timeout", help="How long to wait: seconds or a duration such as 5m.")
CLUSTER_NAME: Any = typer.Argument(..., help="Training cluster (StatefulSet) name.")
SPEC: Any = typer.Argument(..., help="The berth spec (berth.yaml).")


def timeout_seconds(text: str) -> float:
    """``--timeout`` in seconds; a bare number is seconds, like kubectl's ``--timeout``."""
    from berth.errors import UsageError
    from berth.quantity import QuantityError, parse_duration

    try:
        return parse_duration(text, bare_seconds=True)
    except QuantityError as err:
        raise UsageError(f"--timeout: {err}") from None


def make_console(stderr: bool = False) -> Console:
    """A rich console that never wraps or styles names, and never truncates tables when piped."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 220  # piped into a file or grep: never truncate table columns
    return out


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    """The cluster the flags name, resolved like kubectl resolves it."""
    from berth.kube.client import Target
    from berth.kube.client import connect as kube_connect

    return kube_connect(Target(kubeconfig, context, namespace))


def load_spec_in(path: str, namespace: str | None) -> TrainingCluster:
    """The spec at ``path``, moved to ``-n NAMESPACE`` when given (else its ``metadata.namespace``)."""
    from berth.spec.load import load_spec

    spec = load_spec(path)
    if namespace:
        spec.metadata.namespace = namespace
    return spec


def emit_json(data: Any) -> None:
    """One indented JSON document on stdout (``-o json``)."""
    typer.echo(json.dumps(data, indent=2, default=str))
