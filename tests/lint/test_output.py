"""Report formats: json fields, SARIF valid against the official 2.1.0 schema, JUnit, text."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema

from berth.lint.engine import LintOptions, lint_paths
from berth.lint.model import Severity
from berth.lint.output import render
from berth.lint.rules import all_rules

from .conftest import DATA, FIXTURES

INPUTS = [
    str(FIXTURES / "tf-config-mismatch" / "bad.yaml"),
    str(FIXTURES / "yaml-syntax" / "bad.yaml"),
    str(FIXTURES / "spec-invalid" / "good.yaml"),  # a berth spec: findings in its rendered stack
]


def _result():  # type: ignore[no-untyped-def]
    return lint_paths(INPUTS, LintOptions(jobs=1))


def test_json_has_one_record_per_finding() -> None:
    result = _result()
    records = json.loads(render(result, "json", all_rules(), colour=False, fail_on=Severity.WARNING))
    assert len(records) == len(result.findings)
    keys = {"rule", "severity", "file", "line", "column", "apiVersion", "kind", "namespace", "name", "message", "fix"}
    for record in records:
        assert keys <= set(record)
    tf = next(r for r in records if r["rule"] == "tf-config-mismatch")
    assert (tf["kind"], tf["name"], tf["apiVersion"]) == ("StatefulSet", "trainer", "apps/v1")
    assert tf["line"] > 1


def test_sarif_is_valid_sarif_2_1_0() -> None:
    log = json.loads(render(_result(), "sarif", all_rules(), colour=False, fail_on=Severity.WARNING))
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(log, schema, cls=jsonschema.Draft4Validator)
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        region = res["locations"][0]["physicalLocation"].get("region")
        assert region is None or region["startLine"] >= 1
    assert {r["level"] for r in run["results"]} <= {"error", "warning", "note"}
    rendered = [r for r in run["results"] if r["message"]["text"].startswith("in the rendered stack")]
    assert rendered, "the spec's rendered objects were linted"
    for res in rendered:
        location = res["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].endswith("spec-invalid/good.yaml")
        assert "region" not in location


def test_sarif_schema_rejects_broken_logs() -> None:
    """The vendored schema is the real one: a log missing required parts fails it."""
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    assert not validator.is_valid({"version": "2.1.0", "runs": [{"results": []}]})
    assert not validator.is_valid({"version": "2.0.0", "runs": []})


def test_junit_counts_failing_files() -> None:
    result = _result()
    xml = render(result, "junit", all_rules(), colour=False, fail_on=Severity.ERROR)
    root = ET.fromstring(xml.split("?>", 1)[1])
    cases = {case.get("name"): case for case in root.findall("./testsuite/testcase")}
    assert set(cases) == {*INPUTS, f"{INPUTS[2]} (rendered)"}
    assert root.get("failures") == "2"
    assert cases[INPUTS[0]].find("failure") is not None
    assert cases[f"{INPUTS[2]} (rendered)"].find("failure") is None, "warnings only: below --fail-on error"
    assert cases[f"{INPUTS[2]} (rendered)"].find("system-out") is not None


def test_text_groups_by_file_with_source_and_caret(tmp_path: Path) -> None:
    result = _result()
    plain = render(result, "text", all_rules(), colour=False, fail_on=Severity.WARNING)
    assert "\x1b[" not in plain
    files = {f.file for f in result.findings}
    assert f"{INPUTS[2]} (rendered)" in files
    for file in files:
        assert plain.count(f"\n{file}\n") + plain.startswith(f"{file}\n") == 1
    assert "| " in plain and "^" in plain
    assert "in StatefulSet/trainer spec.template.spec.containers[0].env[0].value" in plain
    coloured = render(result, "text", all_rules(), colour=True, fail_on=Severity.WARNING)
    assert "\x1b[31m" in coloured
