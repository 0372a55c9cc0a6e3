"""The committed CRD is what the spec model generates now: a model change must regenerate it."""

from __future__ import annotations

from berth.operator import crd


def test_committed_crd_matches_the_model() -> None:
    assert crd.COMMITTED.read_text(encoding="utf-8") == crd.crd_yaml(), (
        "src/berth/operator/crd.yaml is stale: run `berth operator crd > src/berth/operator/crd.yaml`"
    )


def _nodes(node: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                out += _nodes(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            out += _nodes(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            out += _nodes(node["additionalProperties"], f"{path}.*")
    return out


def test_schema_is_structural() -> None:
    """Every node typed (or int-or-string / preserve-unknown-fields), no $ref, no anyOf."""
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert "$ref" not in node and "anyOf" not in node and "default" not in node, path
        assert (
            "type" in node or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        ), path


def test_unknown_fields_kept_only_for_kubernetes_objects() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kept = sorted(p for p, n in _nodes(schema) if n.get("x-kubernetes-preserve-unknown-fields"))
    assert kept == sorted(
        [
            ".spec.env.*",  # a string or {valueFrom: …}: the controller's model tells them apart
            ".spec.envFrom[]",
            ".spec.initContainers[]",
            ".spec.sidecars[]",
            ".spec.probes.startup",
            ".spec.probes.readiness",
            ".spec.probes.liveness",
            ".spec.podVolumes.*.secret",
            ".spec.podVolumes.*.configMap",
            ".spec.podVolumes.*.projected",
            ".spec.podVolumes.*.csi",
            ".spec.podTemplate",
            ".spec.scheduling.affinity",
        ]
    )
    assert ".spec" not in kept and ".spec.volumes.*" not in kept and ".status" not in kept


def test_cli_prints_the_crd() -> None:
    from typer.testing import CliRunner

    from berth.cli.app import app

    result = CliRunner().invoke(app, ["operator", "crd"])
    assert result.exit_code == 0, result.output
    assert result.output == crd.crd_yaml()
