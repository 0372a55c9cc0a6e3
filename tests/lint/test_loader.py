"""The loader: every field located, duplicates caught, Lists expanded, directories walked."""

from __future__ import annotations

from pathlib import Path

from berth.lint.loader import expand_paths, load_file, load_text

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""


def test_every_field_has_a_position() -> None:
    loaded = load_text("m.yaml", MANIFEST)
    (doc,) = loaded.documents
    assert loaded.locate(doc.ref, ("spec", "template", "spec", "containers", 0, "image")) == (10, 9)
    assert loaded.locate(doc.ref, ("metadata", "name")) == (4, 3)
    # a missing field points at the deepest existing parent
    assert loaded.locate(doc.ref, ("spec", "template", "spec", "nodeSelector")) == (7, 5)


def test_duplicate_keys_are_findings_at_the_second_key() -> None:
    loaded = load_text("d.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: '1'\n  x: '2'\n")
    (problem,) = loaded.problems
    assert (problem.rule, problem.line, problem.column) == ("duplicate-key", 6, 3)
    assert loaded.documents[0].obj["data"] == {"x": "2"}


def test_list_kinds_are_expanded_with_positions() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n" + (
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n"
    )
    loaded = load_text("l.yaml", text)
    assert [d.kind for d in loaded.documents] == ["Service", "ConfigMap"]
    second = loaded.documents[1]
    assert second.ref.item == 1
    assert loaded.locate(second.ref, ("metadata", "name")) == (9, 14)


def test_syntax_error_keeps_documents_before_it() -> None:
    loaded = load_text("s.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nfoo: [\n")
    assert [d.name for d in loaded.documents] == ["a"]
    assert loaded.unreadable
    assert loaded.problems[0].rule == "yaml-syntax"
    assert loaded.problems[0].line == 6


def test_json_and_scalar_types() -> None:
    loaded = load_text(
        "j.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "data": {"n": "1"}}'
    )
    assert loaded.documents[0].obj["metadata"]["name"] == "j"
    typed = load_text("t.yaml", "a: 1\nb: true\nc: null\nd: 2024-01-01\ne: 1.5\nf: '1'\n").roots
    assert typed  # the document is kept for positions
    obj = load_text("t.yaml", "apiVersion: v1\nkind: X\nx: {a: 1, b: true, c: null, d: 2024-01-01}\n").documents[0].obj
    assert obj["x"] == {"a": 1, "b": True, "c": None, "d": "2024-01-01"}


def test_unreadable_file(tmp_path: Path) -> None:
    missing = load_file(str(tmp_path / "nope.yaml"))
    assert missing.unreadable
    assert missing.problems[0].rule == "unreadable-file"


def test_directories_are_walked_recursively(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("a/one.yaml", "a/b/two.yml", "three.json", "notes.txt", ".git/four.yaml", ".hidden.yaml"):
        (tmp_path / name).write_text("{}")
    found = sorted(Path(p).relative_to(tmp_path).as_posix() for p in expand_paths([str(tmp_path)]))
    assert found == ["a/b/two.yml", "a/one.yaml", "three.json"]
