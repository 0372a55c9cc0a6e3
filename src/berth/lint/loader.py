"""Read manifests into objects that remember where every field came from.

libyaml composes the node tree in C (every node carries its line and column); a small
constructor here turns nodes into plain dicts, rejects duplicate keys (which PyYAML would
silently overwrite) and keeps the tree so a finding's key path maps back to
``file:line:col`` only when a finding needs it.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from berth.lint.model import DocRef, Document, Finding, Path, Severity

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_KEEP_AS_TEXT = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", _STR})
_CTOR = yaml.constructor.SafeConstructor()
_SCALARS = {
    tag: _CTOR.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")
}


class _Loader(yaml.CSafeLoader):
    """libyaml's composer with a memoised resolver: manifests repeat the same plain scalars.

    PyYAML resolves every plain scalar's implicit type with Python regexes and calls the
    (unused) path-resolver hooks for every node; both dominate composing time. Same results.
    """

    _plain_tags: dict[str, str] = {}  # noqa: RUF012 - a process-wide cache on purpose

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # untyped in stubs
                if len(self._plain_tags) < 100_000:
                    self._plain_tags[value] = tag
            return tag
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


@dataclass
class LoadedFile:
    """One input file: its objects, its node trees (for positions) and load problems."""

    name: str
    text: str = ""
    roots: dict[int, yaml.Node] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    unreadable: bool = False

    def locate(self, ref: DocRef, path: Path) -> tuple[int, int]:
        """1-based line and column of the deepest node of ``path`` that exists."""
        node = self.roots.get(ref.doc)
        if node is None:
            return (0, 0)
        full: Path = path if ref.item is None else ("items", ref.item, *path)
        mark = node.start_mark
        for part in full:
            child = _child(node, part)
            if child is None:
                break
            mark, node = child
        return (mark.line + 1, mark.column + 1)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def source_line(self, line: int) -> str:
        """The text of a 1-based line (for the text output)."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""


def _child(node: yaml.Node, part: str | int) -> tuple[Any, yaml.Node] | None:
    """The mark to report for ``part`` (the key itself for mappings) and the child node."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        found: tuple[Any, yaml.Node] | None = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                found = (key.start_mark, value)
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return (item.start_mark, item)
    return None


class _Builder:
    """Turns a composed node tree into dicts/lists/scalars, noting duplicate keys."""

    def __init__(self) -> None:
        self.duplicates: list[tuple[str, Any]] = []

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            tag = node.tag
            if tag in _KEEP_AS_TEXT:
                return node.value
            ctor = _SCALARS.get(tag)
            return ctor(_CTOR, node) if ctor is not None else node.value
        build = self.build
        if isinstance(node, yaml.SequenceNode):
            return [build(item) for item in node.value]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = build(value_node)
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            out.setdefault(k, v)
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(build(key_node))
            if key in out:
                self.duplicates.append((key, key_node.start_mark))
            out[key] = build(value_node)
        return out


def load_text(name: str, text: str) -> LoadedFile:
    """Parse every YAML/JSON document of ``text``; keeps what parsed before a syntax error."""
    loaded = LoadedFile(name=name, text=text)
    builder = _Builder()
    try:
        for index, root in enumerate(yaml.compose_all(text, Loader=_Loader)):
            _add_document(loaded, builder, index, root)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = err.problem or err.context or "invalid YAML"
        loaded.problems.append(_problem("yaml-syntax", f"YAML syntax error: {problem}", name, line, col))
        loaded.unreadable = True
    except yaml.YAMLError as err:
        loaded.problems.append(_problem("yaml-syntax", f"YAML error: {err}", name, 0, 0))
        loaded.unreadable = True
    return loaded


def _add_document(loaded: LoadedFile, builder: _Builder, index: int, root: yaml.Node | None) -> None:
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        return
    loaded.roots[index] = root
    if not isinstance(root, yaml.MappingNode):
        line, col = root.start_mark.line + 1, root.start_mark.column + 1
        msg = "document is not a Kubernetes object (expected a mapping with apiVersion and kind)"
        loaded.problems.append(_problem("invalid-document", msg, loaded.name, line, col))
        return
    builder.duplicates.clear()
    obj = builder.build(root)
    for key, mark in builder.duplicates:
        line, col = mark.line + 1, mark.column + 1
        loaded.problems.append(
            _problem("duplicate-key", f"duplicate key {key!r}: the API server rejects it", loaded.name, line, col)
        )
    _add_object(loaded, index, obj)


def _add_object(loaded: LoadedFile, index: int, obj: dict[str, Any]) -> None:
    """One document's object, or each item of a ``*List`` kind, as its own Document."""
    items = obj.get("items")
    if str(obj.get("kind", "")).endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                loaded.documents.append(Document(DocRef(loaded.name, index, i), item))
        return
    loaded.documents.append(Document(DocRef(loaded.name, index), obj))


def load_objects(name: str, objects: Iterable[Mapping[str, Any]]) -> LoadedFile:
    """Objects already in memory as one source named ``name``: no text, so no positions.

    Each object is a document, as if written one per ``---``; Lists are expanded the same way.
    """
    loaded = LoadedFile(name=name)
    for index, obj in enumerate(objects):
        if isinstance(obj, Mapping):
            _add_object(loaded, index, dict(obj))
        else:
            msg = "object is not a Kubernetes object (expected a mapping with apiVersion and kind)"
            loaded.problems.append(_problem("invalid-document", msg, name, 0, 0))
    return loaded


def _problem(rule: str, message: str, file: str, line: int, col: int) -> Finding:
    return Finding(rule=rule, severity=Severity.ERROR, message=message, file=file, line=line, column=col)


def load_file(path: str) -> LoadedFile:
    """Read and parse one file (``-`` is stdin); an unreadable file becomes a finding.

    Stdin is read as bytes like any file, so binary input is a finding, not a traceback.
    """
    name = STDIN_NAME if path == STDIN else path
    loaded = LoadedFile(name=name, unreadable=True)
    what = "directory" if path != STDIN and os.path.isdir(path) else "file"
    try:
        if path == STDIN:
            raw = sys.stdin.buffer.read()
        elif what == "directory":  # one a walk could not enter: say why
            os.listdir(path)
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as err:
        loaded.problems.append(_problem("unreadable-file", f"cannot read {what}: {err.strerror}", name, 0, 0))
        return loaded
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        loaded.problems.append(_problem("unreadable-file", f"not UTF-8: {err.reason}", name, line, col))
        return loaded
    return load_text(name, text)


def expand_paths(paths: Iterable[str]) -> Iterator[str]:
    """Files to lint: given files as-is, directories walked recursively for manifest suffixes.

    Hidden files and directories (``.git``, ``.berth-lint.yaml``) are skipped in walks, and so
    are FIFOs, sockets and devices found in a walk (reading one would block); a broken link and
    a directory the walk cannot enter are yielded so they are reported as unreadable.
    """
    for path in paths:
        if path == STDIN or not os.path.isdir(path):
            yield path
            continue
        unreadable: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(path, onerror=unreadable.append):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if not filename.endswith(MANIFEST_SUFFIXES) or filename.startswith("."):
                    continue
                full = os.path.join(dirpath, filename)
                if os.path.isfile(full) or not os.path.exists(full):
                    yield full
        yield from (str(err.filename) for err in unreadable)
