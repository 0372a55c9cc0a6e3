"""The loader: every field located, duplicates caught, Lists expanded, directories walked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_walk_skips_fifos_but_reports_broken_links(tmp_path: Path) -> None:
    """Reading a FIFO found in a walk would block forever; a dangling link is a real mistake."""
    (tmp_path / "ok.yaml").write_text("{}")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "broken.yaml").symlink_to(tmp_path / "gone.yaml")
    found = sorted(Path(p).name for p in expand_paths([str(tmp_path)]))
    assert found == ["broken.yaml", "ok.yaml"]
    assert load_file(str(tmp_path / "broken.yaml")).problems[0].rule == "unreadable-file"


KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
SCALARS = st.one_of(st.integers(-1000, 1000), st.booleans(), st.text(alphabet="abcxyz ./:", max_size=10))
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, min_size=1, max_size=4)),
    max_leaves=25,
)


def _key_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            out += [(*path, key), *_key_paths(value, (*path, key))]
        return out
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _key_paths(item, (*path, i))]
    return []


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, TREES, min_size=1, max_size=5), st.booleans())
def test_round_trip_and_every_key_located(tree: dict[str, object], flow: bool) -> None:
    """Whatever the layout, objects round-trip and each key path points at that key's text."""
    text = yaml.safe_dump(tree, default_flow_style=flow, width=60)
    loaded = load_text("h.yaml", text)
    (doc,) = loaded.documents
    assert doc.obj == tree
    lines = text.splitlines()
    for path in _key_paths(tree):
        line, col = loaded.locate(doc.ref, path)
        key = str(path[-1])
        assert lines[line - 1][col - 1 :].lstrip("'\"").startswith(key), (path, line, col)


def test_keys_that_override_a_merge_are_not_duplicates() -> None:
    """``<<: *base`` then ``a: 2`` overrides the merged ``a``: YAML's meaning, not a duplicate key."""
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\nx: &base {a: '1', b: '1'}\n"
    text += "data:\n  <<: *base\n  a: '2'\n"
    loaded = load_text("m.yaml", text)
    assert loaded.problems == []
    assert loaded.documents[0].obj["data"] == {"a": "2", "b": "1"}


def test_an_alias_bomb_is_a_finding_not_a_hang() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    loaded = load_text("bomb.yaml", "\n".join(lines) + "\n")  # 10**9 scalars if expanded
    (problem,) = loaded.problems
    assert problem.rule == "yaml-syntax" and problem.line >= 1
    assert "aliases" in problem.message
    assert loaded.unreadable


@pytest.mark.parametrize("depth", [600, 5000])
def test_deep_nesting_is_a_finding_not_a_crash(depth: int) -> None:
    loaded = load_text("deep.yaml", "apiVersion: v1\nkind: X\nx: " + "[" * depth + "]" * depth + "\n")
    (problem,) = loaded.problems
    assert problem.rule == "yaml-syntax" and "nest" in problem.message
    assert loaded.documents == []
