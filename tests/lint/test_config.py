"""Suppression by annotation and ``.berth-lint.yaml`` (found like ruff finds its config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import UsageError
from berth.lint.config import CONFIG_NAME, find_config, load_config
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.model import Severity

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {{berth.dev/ignore: "{ignore}"}}
spec:
  containers: [{{name: c, image: "busybox:latest"}}]
"""


def _rules(path: Path, config_path: Path | None = None) -> list[str]:
    config = load_config(str(config_path) if config_path else find_config([str(path)]))
    return [f.rule for f in lint_paths([str(path)], LintOptions(jobs=1, config=config)).findings]


def test_annotation_suppresses_with_reason_only(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POD.format(ignore="image-latest-tag: pinned by the registry mirror; run-as-root: init needs it"))
    rules = _rules(path)
    assert "image-latest-tag" not in rules and "run-as-root" not in rules
    assert "privilege-escalation" in rules
    path.write_text(POD.format(ignore="image-latest-tag:; no-such-rule: x"))
    rules = _rules(path)
    assert "image-latest-tag" in rules, "an empty reason suppresses nothing"
    assert rules.count("ignore-without-reason") == 2


def test_config_found_in_parent_and_applied(tmp_path: Path) -> None:
    deep = tmp_path / "deploy" / "prod"
    deep.mkdir(parents=True)
    path = deep / "p.yaml"
    path.write_text(POD.format(ignore=""))
    (tmp_path / CONFIG_NAME).write_text(
        "disable: [run-as-root]\nseverity: {image-latest-tag: error}\nfail-on: error\n"
        "per-file-ignores: {'deploy/*/p.yaml': {seccomp-profile-missing: runtime default is set cluster-wide}}\n"
    )
    assert find_config([str(path)]) == str(tmp_path / CONFIG_NAME)
    config = load_config(find_config([str(path)]))
    assert config.fail_on is Severity.ERROR
    result = lint_paths([str(path)], LintOptions(jobs=1, config=config))
    rules = {f.rule: f.severity for f in result.findings}
    assert "run-as-root" not in rules
    assert "seccomp-profile-missing" not in rules
    assert rules["image-latest-tag"] is Severity.ERROR
    assert "privilege-escalation" in rules


def test_ignore_paths(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "p.yaml").write_text(POD.format(ignore=""))
    (tmp_path / "p.yaml").write_text(POD.format(ignore=""))
    (tmp_path / CONFIG_NAME).write_text("ignore-paths: [vendor/]\n")
    config = load_config(find_config([str(tmp_path)]))
    result = lint_paths([str(tmp_path)], LintOptions(jobs=1, config=config))
    assert result.files == 1
    assert {f.file for f in result.findings} == {str(tmp_path / "p.yaml")}


@pytest.mark.parametrize(
    "text",
    [
        "disable: [no-such-rule]\n",
        "colour: red\n",
        "severity: {run-as-root: fatal}\n",
        "per-file-ignores: {'*.yaml': {run-as-root: ''}}\n",
        "- a list\n",
    ],
)
def test_bad_config_is_a_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(str(path))
    assert str(path) in err.value.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"enable: [a,\n", ":2:1: cannot parse lint config: "),
        (b"enable: \xd0\xff\n", ": cannot read lint config: 'utf-8' codec"),
    ],
)
def test_unparsable_config_is_one_line_usage_error(tmp_path: Path, content: bytes, expected: str) -> None:
    """A syntax error names file:line:col; a binary file is a usage error, not a traceback."""
    path = tmp_path / CONFIG_NAME
    path.write_bytes(content)
    with pytest.raises(UsageError) as err:
        load_config(str(path))
    assert err.value.message.startswith(str(path) + expected)
    assert "\n" not in err.value.message
