"""Report formats: text for people, json for scripts, SARIF for code scanning, JUnit for CI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from itertools import groupby
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from berth import __version__
from berth.lint.engine import LintResult
from berth.lint.model import Finding, Severity, path_text
from berth.lint.rules import Rule
from berth.lint.specs import RENDERED_SUFFIX

FORMATS = ("text", "json", "sarif", "junit")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_COLOUR = {Severity.ERROR: "\x1b[31m", Severity.WARNING: "\x1b[33m", Severity.INFO: "\x1b[36m"}
_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"


def render(result: LintResult, fmt: str, rules: dict[str, Rule], *, colour: bool, fail_on: Severity) -> str:
    """The report in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "json":
        return records_json([f.to_json() for f in result.findings])
    if fmt == "sarif":
        return json.dumps(sarif(result, rules), indent=2)
    if fmt == "junit":
        return junit(result, fail_on)
    return text(result, colour=colour)


def records_json(records: list[dict[str, Any]]) -> str:
    """``json.dumps(records, indent=2)``, byte for byte, each value encoded by json's C encoder.

    With ``indent`` json falls back to its pure-Python encoder: 40 ms for the 2,300 findings of
    ``benchmarks/lint_corpus.py``, paid after every process has finished linting. Findings are flat
    records of text, integers and None; anything else is left to ``json.dumps``.
    """
    if not records:
        return "[]"
    encode = json.encoder.encode_basestring_ascii
    items = []
    for record in records:
        if not record or not all(key.__class__ is str for key in record):
            return json.dumps(records, indent=2)
        fields = []
        for key, value in record.items():
            if value is None:
                text = "null"
            elif value.__class__ is str:
                text = encode(value)
            elif value.__class__ is int:
                text = int.__repr__(value)
            else:
                return json.dumps(records, indent=2)
            fields.append(f"    {encode(key)}: {text}")
        items.append("  {\n" + ",\n".join(fields) + "\n  }")
    return "[\n" + ",\n".join(items) + "\n]"


def _object(f: Finding) -> str:
    if not f.kind:
        return ""
    name = f"{f.namespace}/{f.name}" if f.namespace else f.name
    where = path_text(f.path)
    return f"{f.kind}/{name}" + (f" {where}" if where else "")


def text(result: LintResult, *, colour: bool) -> str:
    """Findings grouped by file, each with its source line and a caret under the column."""

    def paint(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if colour else s

    lines: list[str] = []
    for file, group in groupby(result.findings, key=lambda f: f.file):
        lines.append(paint(_BOLD, file))
        for f in group:
            sev = paint(_COLOUR[f.severity], f"{f.severity!s:7}")
            lines.append(f"  {f.line}:{f.column}  {sev} {paint(_BOLD, f.rule)}  {f.message}")
            obj = _object(f)
            if obj:
                lines.append(paint(_DIM, f"      in {obj}"))
            if f.source_line:
                lines.append(f"      | {f.source_line}")
                lines.append(f"      | {' ' * max(f.column - 1, 0)}{paint(_COLOUR[f.severity], '^')}")
            if f.fix:
                lines.append(paint(_DIM, f"      fix: {f.fix}"))
        lines.append("")
    counts = ", ".join(_plural(result.count(s), str(s)) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    lines.append(
        f"{counts} in {_plural(result.files, 'file')}, {_plural(result.resources, 'resource')} "
        f"({result.skipped} skipped: no schema), Kubernetes {result.kubernetes_version}"
        + (f"; {result.cel_skipped} CRD CEL rule checks not evaluated" if result.cel_skipped else "")
    )
    return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 or noun == "info" else f"{count} {noun}s"


def _uri(file: str) -> str:
    """A relative, percent-encoded POSIX path when under the working directory (what code scanning expects).

    Findings in a rendered berth spec point at the spec file itself.
    """
    if file.startswith("<"):
        return file.strip("<>")
    absolute = os.path.abspath(file.removesuffix(RENDERED_SUFFIX))
    rel = os.path.relpath(absolute, os.getcwd())
    return quote((absolute if rel.startswith("..") else rel).replace(os.sep, "/"))


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc.strip()},
        "help": {"text": rule.doc.strip(), "markdown": rule.doc.strip()},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {"equivalents": dict(rule.equivalents)} if rule.equivalents else {},
    }


def sarif(result: LintResult, rules: dict[str, Rule]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run (GitHub code scanning accepts it as is)."""
    ids = list(rules)
    results = []
    for f in result.findings:
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file)}}
        rendered = f.file.endswith(RENDERED_SUFFIX)
        if f.line > 0 and not rendered:
            region: dict[str, Any] = {"startLine": f.line, "startColumn": max(f.column, 1)}
            if f.source_line:
                region["snippet"] = {"text": f.source_line}
            location["region"] = region
        entry: dict[str, Any] = {
            "ruleId": f.rule,
            "level": _SARIF_LEVEL[f.severity],
            "message": {
                "text": ("in the rendered stack: " if rendered else "")
                + f.message
                + (f" (fix: {f.fix})" if f.fix else "")
            },
            "locations": [{"physicalLocation": location}],
        }
        if f.rule in rules:
            entry["ruleIndex"] = ids.index(f.rule)
        if f.kind:
            entry["properties"] = {"kind": f.kind, "name": f.name, "namespace": f.namespace, "path": path_text(f.path)}
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "berth-lint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_sarif_rule(r) for r in rules.values()],
                    }
                },
                "results": results,
            }
        ],
    }


def junit(result: LintResult, fail_on: Severity) -> str:
    """JUnit XML: one test case per file, failing when it has findings at or above ``fail_on``."""
    by_file: dict[str, list[Finding]] = {name: [] for name in result.file_names}
    for f in result.findings:
        by_file.setdefault(f.file, []).append(f)
    failures = sum(1 for fs in by_file.values() if any(f.severity >= fail_on for f in fs))
    suites = ET.Element("testsuites", name="berth lint", tests=str(len(by_file)), failures=str(failures))
    suite = ET.SubElement(
        suites, "testsuite", name="berth lint", tests=str(len(by_file)), failures=str(failures), errors="0"
    )
    for file, findings in by_file.items():
        case = ET.SubElement(suite, "testcase", classname="berth.lint", name=file)
        failing = [f for f in findings if f.severity >= fail_on]
        if failing:
            failure = ET.SubElement(
                case, "failure", message=f"{len(failing)} findings at or above {fail_on}", type=failing[0].rule
            )
            failure.text = _lines(failing)
        rest = [f for f in findings if f.severity < fail_on]
        if rest:
            ET.SubElement(case, "system-out").text = _lines(rest)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _lines(findings: Iterable[Finding]) -> str:
    return "\n".join(f"{f.file}:{f.line}:{f.column}: {f.severity} {f.rule}: {f.message}" for f in findings)
