"""berth specs in lint input: validated by the spec loader, located in the linted file, same rules as render."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.lint import LintOptions, lint_objects, lint_paths
from berth.lint.model import Finding, Severity
from berth.spec.errors import SpecError
from berth.spec.load import parse_spec

OPTIONS = LintOptions(jobs=1)

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: ml
data:
  LOG_LEVEL: info
  BATCH: "64"
"""
SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: t, namespace: ml}
spec:
  replicas: 2
  image: busybox:1.36
  storageClasses:
    fast: {provider: aws-ebs, type: gp3}
  volumes:
    m:
      mountPath: /m
      size: 100GB
      storageClass: fast
"""


def _spec_findings(path: Path) -> list[Finding]:
    result = lint_paths([str(path)], OPTIONS)
    return [f for f in result.findings if f.rule == "spec-invalid"]


def test_a_spec_after_other_documents_is_located_in_the_file(tmp_path: Path) -> None:
    """The bad size is on line 21 of the file (line 12 of the spec), at its value."""
    path = tmp_path / "stack.yaml"
    text = CONFIGMAP + "---\n" + SPEC
    path.write_text(text)
    (finding,) = _spec_findings(path)
    line = text.splitlines().index("      size: 100GB") + 1
    assert (finding.line, finding.column) == (line, 13) == (21, 13)
    assert finding.message.startswith("spec.volumes.m.size: ")
    assert finding.source_line == "      size: 100GB"


def test_lint_and_render_read_a_spec_the_same_way(tmp_path: Path) -> None:
    """``yes`` is not a boolean in a spec (YAML 1.2), wherever the spec is written."""
    body = SPEC.replace("100GB", "100Gi") + "  networkPolicy: yes\n"
    with pytest.raises(SpecError) as err:
        parse_spec(body, "s.yaml")
    (issue,) = err.value.issues
    path = tmp_path / "stack.yaml"
    path.write_text(CONFIGMAP + "---\n" + body)
    (finding,) = _spec_findings(path)
    assert finding.message == f"{issue.dotted}: {issue.message}"
    assert finding.line == issue.line + CONFIGMAP.count("\n") + 1


def test_a_mistyped_api_version_is_an_error_with_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("berth.dev/v1alpha1", "berth.dev/v1alpa1"))
    result = lint_paths([str(path)], OPTIONS)
    (finding,) = [f for f in result.findings if f.severity.name == "ERROR"]
    assert (finding.rule, finding.line, finding.column) == ("spec-invalid", 1, 13)
    assert finding.message.startswith("apiVersion: expected apiVersion: berth.dev/v1alpha1")
    assert finding.fix == "did you mean apiVersion: berth.dev/v1alpha1?"
    assert result.exit_code(finding.severity) != 0


def test_a_mistyped_kind_is_an_error_with_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("kind: TrainingCluster", "kind: TrainingClustr"))
    (finding,) = _spec_findings(path)
    assert finding.fix == "did you mean kind: TrainingCluster?"


def test_two_specs_in_one_file_are_refused_as_render_refuses_them(tmp_path: Path) -> None:
    good = SPEC.replace("100GB", "100Gi")
    text = good + "---\n" + good.replace("name: t,", "name: u,")
    with pytest.raises(SpecError) as err:
        parse_spec(text, "s.yaml")
    (issue,) = err.value.issues
    path = tmp_path / "s.yaml"
    path.write_text(text)
    (finding,) = _spec_findings(path)
    assert (finding.message, finding.fix) == (f"{issue.dotted}: {issue.message}", issue.hint)
    assert finding.line == good.count("\n") + 2, "at the second spec"


def test_a_spec_among_objects_in_memory_is_rendered_and_linted() -> None:
    import yaml

    spec = yaml.safe_load(SPEC.replace("100GB", "100Gi"))
    result = lint_objects([spec], OPTIONS)
    assert not [f for f in result.findings if f.rule == "spec-invalid"]
    assert any(f.file == "<objects> (rendered)" for f in result.findings)
    bad = lint_objects([yaml.safe_load(SPEC)], OPTIONS)
    (finding,) = [f for f in bad.findings if f.rule == "spec-invalid"]
    assert (finding.message.split(":")[0], finding.line) == ("spec.volumes.m.size", 0)


def test_a_class_the_spec_declares_existing_is_known(tmp_path: Path) -> None:
    """``existing: true`` says the cluster has the class: claims on it are not unknown-storage-class."""
    body = SPEC.replace("100GB", "100Gi").replace(
        "    fast: {provider: aws-ebs, type: gp3}\n",
        "    fast: {provider: aws-ebs, type: gp3}\n    nfs: {existing: true}\n",
    )
    body += "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, size: 1Ti, storageClass: nfs}\n"
    path = tmp_path / "s.yaml"
    path.write_text(body)
    assert [f.rule for f in lint_paths([str(path)], OPTIONS).findings if f.rule == "unknown-storage-class"] == []
    undeclared = tmp_path / "claim.yaml"  # the class is still unknown to a claim linted without the spec
    undeclared.write_text(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
        "spec: {storageClassName: nfs, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
    )
    assert [f.rule for f in lint_paths([str(undeclared)], OPTIONS).findings if f.rule == "unknown-storage-class"]


def test_examples_lint_clean() -> None:
    """The README's promise: ``berth lint examples/`` finds nothing."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    result = lint_paths([str(examples)], OPTIONS)
    assert [(f.file, f.line, f.rule, f.message) for f in result.findings] == []
    assert result.exit_code(Severity.INFO) == 0
