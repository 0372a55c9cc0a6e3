"""Strict offline schemas: every error located, versions, bundled CRDs, --schema-dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.errors import UsageError
from berth.lint.engine import LintOptions, lint_paths
from berth.lint.model import path_text
from berth.lint.schema import SchemaStore, available_versions, resolve_version

BAD_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  labelz: {a: b}
spec:
  containers:
  - name: c
    image: busybox:1.36
    tty: "yes"
    resources: {limits: {memory: [1]}}
    ports: [{containerPort: "80"}]
"""


def _lint(tmp_path: Path, text: str, **options: object) -> list[tuple[str, int, int, str]]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    result = lint_paths([str(path)], LintOptions(schema_only=True, jobs=1, **options))  # type: ignore[arg-type]
    return [(f.rule, f.line, f.column, f.message) for f in result.findings]


def _paths(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    result = lint_paths([str(path)], LintOptions(schema_only=True, jobs=1))
    return [path_text(f.path) for f in result.findings]


def test_all_errors_of_an_object_with_positions(tmp_path: Path) -> None:
    found = [(line, col) for rule, line, col, _ in _lint(tmp_path, BAD_POD) if rule == "schema-invalid"]
    # unknown metadata field, a string for a bool, a list for a quantity, a string port: four places
    assert (5, 3) in found
    assert (10, 5) in found
    assert (11, 26) in found
    assert any(line == 12 for line, _ in found)
    assert len(found) >= 4


def test_versions_installed_and_selected(tmp_path: Path) -> None:
    versions = available_versions()
    assert len(versions) >= 3
    assert resolve_version(None) == versions[-1]
    assert resolve_version("v1.30.4") == "1.30"
    assert resolve_version("9.99") == versions[-1]
    with pytest.raises(UsageError):
        resolve_version("1.2")
    with pytest.raises(UsageError):
        resolve_version("latest")
    # spec.ordinals exists since 1.26: an old schema rejects it, the newest accepts it
    sts = (
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: s\n"
        "  ordinals: {start: 1}\n  selector: {matchLabels: {a: b}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: 'x:1'}]}\n"
    )
    assert _lint(tmp_path, sts) == []
    old = _lint(tmp_path, sts, kubernetes_version=versions[0])
    assert [m for _, _, _, m in old] == ["unknown field 'ordinals'"]


def test_unknown_kind_is_skipped_not_valid(tmp_path: Path) -> None:
    found = _lint(tmp_path, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert [rule for rule, *_ in found] == ["schema-unknown-kind"]


def test_bundled_crds(tmp_path: Path) -> None:
    good = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: t}
spec:
  selector: {matchLabels: {app: t}}
  endpoints: [{port: metrics, interval: 30s}]
---
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: s}
spec: {schedule: "0 2 * * *", template: {includedNamespaces: [ml], ttl: 720h}}
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: v}
spec: {source: {persistentVolumeClaimName: p}}
"""
    assert _lint(tmp_path, good) == []
    bad = good.replace("interval: 30s", "interval: soon").replace("ttl: 720h", "ttl: 720h, includeNamespaces: []")
    messages = [m for _, _, _, m in _lint(tmp_path, bad)]
    assert "unknown field 'includeNamespaces'" in messages
    paths = _paths(tmp_path, bad)
    assert "spec.endpoints[0].interval" in paths
    store = SchemaStore()
    for api_version, kind in [
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("velero.io/v1", "Backup"),
        ("velero.io/v1", "Restore"),
        ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"),
    ]:
        assert store.knows(api_version, kind)


def test_schema_dir_takes_crds_and_json_schemas(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "widget.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n"
        "spec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n"
        "  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
        "        type: object\n        properties:\n          spec:\n            type: object\n"
        "            properties:\n              size: {type: integer}\n"
        "              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    )
    gadget = {
        "type": "object",
        "properties": {
            "apiVersion": {"enum": ["example.com/v2"]},
            "kind": {"enum": ["Gadget"]},
            "metadata": {"type": "object"},
            "colour": {"type": "string"},
        },
        "additionalProperties": False,
    }
    (schemas / "gadget.json").write_text(json.dumps(gadget))
    text = (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: big, extra: {any: 1}, typo: 1}\n"
        "---\napiVersion: example.com/v2\nkind: Gadget\nmetadata: {name: g}\ncolour: 3\n"
    )
    messages = [m for _, _, _, m in _lint(tmp_path, text, schema_dirs=(str(schemas),))]
    assert "unknown field 'typo'" in messages
    assert 'expected integer, got string "big"' in messages
    assert "expected string, got integer 3" in messages
    assert len(messages) == 3
    (schemas / "junk.json").write_text("{}")
    with pytest.raises(UsageError):
        SchemaStore(schema_dirs=[str(schemas)])


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.yaml", b"a: [\n", "cannot read schema file"),
        ("bad.yaml", b"kind: \xd0\xff\n", "cannot read schema file"),
        ("bad.yaml", b"kind: CustomResourceDefinition\nspec: 5\n", "malformed CustomResourceDefinition"),
        (
            "bad.json",
            b'{"type": 5, "properties": {"kind": {"enum": ["X"]}, "apiVersion": {"enum": ["x.io/v1"]}}}',
            "invalid JSON schema for x.io/v1 X",
        ),
    ],
)
def test_broken_schema_dir_file_is_a_usage_error(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    """Unparsable, malformed or invalid schemas fail up front with the file named, not as a traceback."""
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UsageError) as err:
        SchemaStore(schema_dirs=[str(tmp_path)])
    assert err.value.message.startswith(f"{tmp_path / name}: {expected}")


# An AlertmanagerConfig-like CRD as kube-prometheus ships it: enum values `=` and `=~` are plain
# scalars that PyYAML's YAML 1.1 loader tags `value` and refused, aborting the whole run.
_UPSTREAM_STYLE_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: alertmanagerconfigs.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: AlertmanagerConfig, plural: alertmanagerconfigs}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              matchers:
                type: array
                items:
                  type: object
                  properties:
                    matchType:
                      enum:
                      - '!='
                      - =
                      - =~
                      - '!~'
                      type: string
                    name: {type: string, pattern: "%s"}
"""


def test_schema_dir_reads_upstream_crd_enums(tmp_path: Path) -> None:
    schemas = tmp_path / "crds"
    schemas.mkdir()
    (schemas / "amc.yaml").write_text(_UPSTREAM_STYLE_CRD % "^[a-z]+$")
    text = (
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: a}\n"
        "spec:\n  matchers:\n  - {name: severity, matchType: '='}\n  - {name: team, matchType: '=='}\n"
    )
    messages = [m for _, _, _, m in _lint(tmp_path, text, schema_dirs=(str(schemas),))]
    assert len(messages) == 1 and "==" in messages[0]


def test_schema_dir_crd_that_cannot_compile_is_skipped_not_a_traceback(tmp_path: Path) -> None:
    """A CRD whose pattern jsonschema-rs cannot compile: its kind is skipped (no schema), the run goes on."""
    schemas = tmp_path / "crds"
    schemas.mkdir()
    (schemas / "amc.yaml").write_text(_UPSTREAM_STYLE_CRD % "([")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: a}\n")
    result = lint_paths([str(manifest)], LintOptions(jobs=1, schema_dirs=(str(schemas),)))
    assert [f.rule for f in result.findings] == ["schema-unknown-kind"]
    assert result.skipped == 1
