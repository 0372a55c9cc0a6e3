"""Leading-zero numbers read differently by YAML 1.1 (Kubernetes) and YAML 1.2 (berth specs): one warning each."""

from __future__ import annotations

from berth.lint.loader import load_text

SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: t}
spec:
  volumes:
    - {name: a, secret: {secretName: s, defaultMode: 0644}}
    - {name: b, secret: {secretName: s, defaultMode: 0o644}}
"""


def _octals(name: str, text: str) -> list[tuple[int, int, str, str | None]]:
    loaded = load_text(name, text)
    return [(p.line, p.column, p.message, p.fix) for p in loaded.problems if p.rule == "ambiguous-octal"]


def test_a_berth_spec_reads_0644_as_decimal_and_0o644_is_right() -> None:
    [(line, column, message, fix)] = _octals("spec.yaml", SPEC)
    assert (line, column) == (6, 54)
    assert message == "0644 is decimal 644 in a berth spec (YAML 1.2), not octal 420 as kubectl reads it"
    assert fix == "write 420 or 0o644"


def test_the_same_values_in_a_manifest_speak_of_kubectl() -> None:
    manifest = SPEC.replace("berth.dev/v1alpha1", "v1").replace("TrainingCluster", "Pod")
    found = _octals("pod.yaml", manifest)
    assert [(line, column) for line, column, *_ in found] == [(6, 54), (7, 54)]
    assert found[0][2].startswith("0644 is octal 420 to kubectl (YAML 1.1) but decimal 644")
    assert found[1][2].startswith("0o644 is the text '0o644' to kubectl")
    assert found[1][3] == "write 420 (# 0o644 in a comment)"


def test_values_both_yamls_agree_on_are_quiet() -> None:
    text = 'apiVersion: v1\nkind: X\na: [0, 00, 07, 0x1F, 0800, "0644", 420, 1_000, 0.5]\nb: {mode: 0755}\n'
    assert [(line, column) for line, column, *_ in _octals("x.yaml", text)] == [(4, 11)]
    assert _octals("x.json", '{"apiVersion": "v1", "kind": "X", "mode": 420, "path": "0644"}') == []
