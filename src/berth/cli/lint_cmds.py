"""``berth lint``: schema validation and storage-aware rules for Kubernetes manifests."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from berth.cli.options import format_option

if TYPE_CHECKING:
    from berth.lint.rules import Rule


class Format(StrEnum):
    """``-o/--format``: the report formats of ``berth.lint.output.FORMATS``, text and json plus CI's own."""

    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


def lint(
    paths: list[str] = typer.Argument(None, help="Files, directories (recursive) or - for stdin."),
    fmt: Format = format_option(Format, "--format", "-f", "-o"),
    fail_on: str = typer.Option(
        None, "--fail-on", help="Exit 1 on findings at or above: error, warning (default), info."
    ),
    kubernetes_version: str = typer.Option(None, "--kubernetes-version", help="Schema version, e.g. 1.31."),
    schema_dir: list[str] = typer.Option(None, "--schema-dir", help="Extra CRDs or JSON schemas (repeatable)."),
    schema_only: bool = typer.Option(False, "--schema-only", help="Only validate schemas, run no rules."),
    config: str = typer.Option(None, "--config", help="Lint config (default: nearest .berth-lint.yaml)."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes (default: one per CPU)."),
    group_by: str = typer.Option(
        "dir", "--group-by", help="Objects cross-object rules join: dir (default), file, kustomization, none."
    ),
    list_rules: bool = typer.Option(False, "--list-rules", help="List the rules and exit."),
    explain: str = typer.Option(None, "--explain", help="Show the documentation of a rule and exit."),
) -> None:
    """Validate manifests offline and check them for storage and distributed-training pitfalls.

    Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 usage error or unparsable input.
    """
    from berth.errors import UsageError
    from berth.lint.rules import all_rules

    rules = all_rules()
    if list_rules:
        typer.echo(_rule_list(rules, fmt))
        return
    if explain:
        rule = rules.get(explain)
        if rule is None:
            raise UsageError(f"unknown rule {explain!r}", hint="berth lint --list-rules shows them all")
        typer.echo(_explain(rule))
        return
    if not paths:
        raise UsageError("no input: give files, directories or -", hint="berth lint manifests/")
    from berth.cli.lint_fast import run_lint

    report, code = run_lint(
        paths=paths,
        fmt=fmt,
        fail_on=fail_on,
        kubernetes_version=kubernetes_version,
        schema_dir=schema_dir,
        schema_only=schema_only,
        config=config,
        jobs=jobs,
        group_by=group_by,
    )
    typer.echo(report)
    raise typer.Exit(code)


def _rule_list(rules: Mapping[str, Rule], fmt: str) -> str:
    import json

    typed = list(rules.values())
    if fmt == "json":
        return json.dumps(
            [
                {"id": r.id, "severity": str(r.severity), "summary": r.summary, "equivalents": dict(r.equivalents)}
                for r in typed
            ],
            indent=2,
        )
    width = max(len(r.id) for r in typed)
    return "\n".join(f"{r.id:{width}}  {r.severity!s:7}  {r.summary}" for r in typed)


def _explain(rule: Rule) -> str:
    head = f"{rule.id} ({rule.severity})"
    same = "; ".join(f"{tool}: {ids}" for tool, ids in rule.equivalents.items())
    return "\n".join([head, "=" * len(head), "", rule.doc.strip(), *([f"\nEquivalent checks: {same}"] if same else [])])


def register(app: typer.Typer) -> None:
    """Add ``berth lint`` to the root app."""
    app.command("lint", no_args_is_help=False)(lint)
