"""YAML text → plain data that remembers where every field came from: berth's one YAML layer.

libyaml composes the node tree in C (every node carries its line and column). Plain scalars
are left untyped by the composer and typed here, by the reader's schema: Kubernetes reads
manifests as YAML 1.1 (``yes`` is a boolean), a berth spec is YAML 1.2 (``yes`` is a string,
so a typo in a boolean field is an error, not a surprise). One node tree can thus be read
either way, which lets ``berth lint`` hand a spec it found among manifests to the spec loader.

Input may be hostile: nesting is bounded by libyaml and by ``MAX_DEPTH`` here, and alias
expansion ("billion laughs") by a budget proportional to the document's own size.

JSON is read as kubectl reads it: a text that is a stream of JSON values (one object, or several
written one after another, as ``kubectl get -o json`` output concatenated) is one document per
value, each typed by JSON's rules (``1e3`` is a number, as YAML 1.1 would not have it), and each
node still carries its line and column in the whole text.
Leaf module: imports nothing from berth.
"""

from __future__ import annotations

import enum
import json
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml._yaml import CParser

Path = tuple[str | int, ...]

# Deeper than any Kubernetes object or spec; the builder recurses once per level.
MAX_DEPTH = 100
# Collections aliases may add: this many plus ALIAS_RATIO times the collections written out.
_ALIAS_FREE = 10_000
_ALIAS_RATIO = 10

_PLAIN = "tag:berth.dev,2025:plain"  # a plain scalar, typed by the schema in the builder
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_CTOR = yaml.constructor.SafeConstructor()
_SCALAR = yaml.ScalarNode
_SEQUENCE = yaml.SequenceNode


class YamlError(Exception):
    """Text that is not YAML, or too deep or too aliased to read; ``line``/``column`` are 1-based (0: unknown)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class _Composer(CParser):
    """libyaml's composer; plain scalars get the ``_PLAIN`` tag, typed later by the schema.

    Only the composer: PyYAML's loaders add a constructor and a resolver, whose set-up cost more
    than composing a typical 300-byte manifest file (they are never used: this module types).
    Untagged nodes are tagged here without PyYAML's regex resolver and its (unused)
    path-resolver hooks, which dominate composing time for large manifests. The composer calls
    both hooks around every node; as C functions (``operator.is_`` takes the two arguments,
    ``tuple`` none, and their results are ignored) they cost no Python frame: -7% instructions
    composing a repository of small manifests.
    """

    descend_resolver = operator.is_  # a no-op here: the result is ignored
    ascend_resolver = tuple

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is _SCALAR:
            return _PLAIN if implicit[0] else _STR  # quoted: a string in every schema
        return _SEQ if kind is _SEQUENCE else _MAP


class _JsonComposer(_Composer):
    """Composes one JSON value: its plain scalars are JSON's literals, typed here by JSON's rules."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not _SCALAR:
            return _SEQ if kind is _SEQUENCE else _MAP
        if not implicit[0]:
            return _STR
        if value in ("true", "false"):
            return _BOOL
        if value == "null":
            return _NULL
        return _FLOAT if any(c in value for c in ".eE") else _INT


def compose_all(text: str) -> Iterator[yaml.Node | None]:
    """The node tree of each document (None for an empty one); raises YamlError at the first syntax error.

    A JSON stream (one or more JSON values one after another) is one document per value.
    """
    stream = _json_stream(text)
    if stream is None:
        yield from _compose(text, _Composer)
        return
    spans, error = stream
    line = last = 0
    for start, end in spans:
        line += text.count("\n", last, start)
        last = start
        column = start - (text.rfind("\n", 0, start) + 1)
        for node in _compose(_json_escapes(text[start:end]), _JsonComposer, (line, column)):
            if node is not None and start:
                _shift(node, start, line, column)
            yield node
    if error is not None:
        raise YamlError(f"JSON syntax error: {error.msg}", error.lineno, error.colno)


def _compose(text: str, loader: type[_Composer], offset: tuple[int, int] = (0, 0)) -> Iterator[yaml.Node | None]:
    """libyaml's documents of ``text``; an error's position is moved by ``offset`` (line, column)."""
    try:
        composer = loader(text)
        while composer.check_node():
            yield composer.get_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark is None:
            raise YamlError(str(err.problem or err.context or "invalid YAML")) from None
        line, col = mark.line + offset[0] + 1, mark.column + (offset[1] if mark.line == 0 else 0) + 1
        raise YamlError(str(err.problem or err.context or "invalid YAML"), line, col) from None
    except yaml.YAMLError as err:
        raise YamlError(str(err)) from None


_JSON_START = re.compile(r"[ \t\r\n]*[{\[]")
_JSON_SPACE = re.compile(r"[ \t\r\n]*")
# A UTF-16 surrogate pair escape (how JSON writes a character beyond U+FFFF), not itself escaped:
# YAML has no such escape, its ``\U`` takes the whole code point.
_SURROGATES = re.compile(r"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})")


def _json_stream(text: str) -> tuple[list[tuple[int, int]], json.JSONDecodeError | None] | None:
    """Where each value of a JSON stream starts and ends; None when ``text`` is not one (read it as YAML).

    A value that starts like JSON after values that were JSON but does not parse is a JSON
    syntax error, returned with the values before it (they are still linted).
    """
    if not _JSON_START.match(text):
        return None
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    pos = _JSON_SPACE.match(text).end()  # type: ignore[union-attr]  # matches the empty string
    while pos < len(text):
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:  # YAML flow style, or JSON with a typo
            return (spans, err) if spans and text[pos] in "{[" else None
        except RecursionError:  # YAML's depth bound reports it better
            return None
        spans.append((pos, end))
        pos = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
    return spans, None


def _json_escapes(text: str) -> str:
    """JSON's surrogate pair escapes as YAML's ``\\UXXXXXXXX`` (two columns shorter, later on that line only)."""
    if "\\u" not in text:
        return text

    def pair(m: re.Match[str]) -> str:
        code = 0x10000 + ((int(m[2], 16) - 0xD800) << 10) + (int(m[3], 16) - 0xDC00)
        return f"{m[1]}\\U{code:08X}"

    return _SURROGATES.sub(pair, text)


def _shift(root: yaml.Node, index: int, line: int, column: int) -> None:
    """Move the marks of a value composed on its own to where it starts in the whole text.

    libyaml's marks are read-only, so each node gets new ones.
    """

    def moved(mark: Any) -> yaml.Mark:
        col = mark.column + column if mark.line == 0 else mark.column
        return yaml.Mark(mark.name, mark.index + index, mark.line + line, col, None, 0)

    stack = [root]
    while stack:
        node = stack.pop()
        node.start_mark, node.end_mark = moved(node.start_mark), moved(node.end_mark)
        if isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


class _Yaml12(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema implicit types, as ruamel.yaml resolves them (berth specs used it)."""


for _tag, _pattern, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        _FLOAT,
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
    ),
    (_INT, r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$", "-+0123456789"),
    (_MERGE, r"^(?:<<)$", "<"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (
        _TIMESTAMP,
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        "0123456789",
    ),
):
    _Yaml12.add_implicit_resolver(_tag, re.compile(_pattern, re.X), list(_first))


def _int12(node: yaml.ScalarNode) -> int:
    text = node.value.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)  # a leading zero is decimal in YAML 1.2


def _float12(node: yaml.ScalarNode) -> float:
    text = node.value.replace("_", "").lower()
    if text.endswith(".nan"):
        return float("nan")
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float(text)


def _bool12(node: yaml.ScalarNode) -> bool:
    return str(node.value).lower() == "true"


class Schema(enum.Enum):
    """How plain scalars are typed and mapping keys read."""

    # YAML 1.1, as the Kubernetes API server reads manifests; timestamps stay text, keys are text.
    KUBERNETES = "kubernetes"
    # YAML 1.2 core (what ruamel.yaml read specs as); int and bool keys stay typed.
    SPEC = "spec"


Construct = Callable[[yaml.ScalarNode], Any]


@dataclass
class _Types:
    resolver: yaml.resolver.BaseResolver
    constructors: dict[str, Construct]
    typed_keys: bool
    # plain scalar → (tag, constructor or None for text): manifests repeat the same scalars
    cache: dict[str, tuple[str, Construct | None]] = field(default_factory=dict)
    # the plain scalars of ``cache`` that stay text and cannot look octal: the builder's fast path
    texts: set[str] = field(default_factory=set)

    def plain(self, value: str) -> tuple[str, Construct | None]:
        typed = self.cache.get(value)
        if typed is None:
            tag = str(self.resolver.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]
            typed = (tag, self.constructors.get(tag))
            if len(self.cache) < 100_000:
                self.cache[value] = typed
                if typed[1] is None and value[:1] != "0":
                    self.texts.add(value)
        return typed


_TYPES = {
    Schema.KUBERNETES: _Types(
        yaml.resolver.Resolver(),
        {
            _INT: _CTOR.construct_yaml_int,
            _FLOAT: _CTOR.construct_yaml_float,
            _BOOL: _CTOR.construct_yaml_bool,
            _NULL: _CTOR.construct_yaml_null,
        },
        typed_keys=False,
    ),
    Schema.SPEC: _Types(
        _Yaml12(),
        {
            _INT: _int12,
            _FLOAT: _float12,
            _BOOL: _bool12,
            _NULL: _CTOR.construct_yaml_null,
            _TIMESTAMP: _CTOR.construct_yaml_timestamp,
        },
        typed_keys=True,
    ),
}


@dataclass(frozen=True)
class Duplicate:
    """A key written twice in one mapping (PyYAML would keep the last silently); 1-based position."""

    key: str
    line: int
    column: int


class Octal(NamedTuple):
    """A plain scalar YAML 1.1 and YAML 1.2 read as different values: ``0644`` (420 or 644), ``0o644``."""

    text: str
    line: int
    column: int


# 1.1's octal (0644: 420 in 1.1, 644 in 1.2) and 1.2's (0o644: 420 in 1.2, the text "0o644" in 1.1).
_OCTAL = re.compile(r"0[0-7_]*[1-7][0-7_]*[0-7]|0o[0-7_]+")


@dataclass
class Built:
    """A document's plain data, the duplicate keys and the octal-looking scalars found building it."""

    data: Any
    duplicates: list[Duplicate]
    octals: list[Octal] = field(default_factory=list)


def build(node: yaml.Node, schema: Schema = Schema.KUBERNETES) -> Built:
    """Dicts, lists and scalars from a node tree; raises YamlError if too deep or too aliased."""
    builder = _Builder(_TYPES[schema])
    return Built(builder.build(node, 0), builder.duplicates, builder.octals)


class _Builder:
    """Builds one document. Scalars, most of a manifest's nodes, are typed straight from the loop over
    their collection, and a plain scalar's type is read from the cache before asking the schema's
    resolver (the build was a third of reading a manifest). A quoted scalar, or a plain one the
    schema has already read as text (``texts``), is taken as it is without a call: most of them.
    """

    def __init__(self, types: _Types) -> None:
        self.types = types
        self.cache = types.cache
        self.texts = types.texts
        self.constructors = types.constructors
        self.duplicates: list[Duplicate] = []
        self.octals: list[Octal] = []
        self.seen: set[int] = set()
        self.written = 0  # collections as written in the text
        self.total = 0  # collections built, aliases expanded

    def scalar(self, node: yaml.ScalarNode) -> Any:
        value = node.value
        if node.tag == _PLAIN:
            typed = self.cache.get(value)
            tag, ctor = self.types.plain(value) if typed is None else typed
            if value[:1] == "0" and _OCTAL.fullmatch(value):
                self.octals.append(Octal(value, *_position(node.start_mark)))
        else:
            tag, ctor = node.tag, self.constructors.get(node.tag)
        if ctor is None:
            return value
        try:
            return ctor(node)
        except (ValueError, yaml.YAMLError):  # an explicit tag on a value it does not fit: !!int abc
            message = f"{value!r} is not a valid {tag.rpartition(':')[2]}"
            raise YamlError(message, *_position(node.start_mark)) from None

    def build(self, node: yaml.Node, depth: int) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        # Only collections are counted: an alias of a scalar adds one value, of a collection a tree.
        self.total += 1
        seen, ident = self.seen, id(node)
        if ident not in seen:
            seen.add(ident)
            self.written += 1
        elif self.total > _ALIAS_FREE + _ALIAS_RATIO * self.written:
            raise YamlError("aliases expand the document too much (a YAML bomb?)", *_position(node.start_mark))
        if depth >= MAX_DEPTH:
            raise YamlError(f"nested deeper than {MAX_DEPTH} levels", *_position(node.start_mark))
        depth += 1
        build, scalar, texts = self.build, self.scalar, self.texts
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            for item in node.value:
                if item.__class__ is not _SCALAR:
                    items.append(build(item, depth))
                elif item.tag is _STR or (item.tag is _PLAIN and item.value in texts):
                    items.append(item.value)
                else:
                    items.append(scalar(item))
            return items
        out: dict[Any, Any] = {}
        merged: dict[Any, Any] | None = None
        text_keys = not self.types.typed_keys
        for key_node, value_node in node.value:
            key = key_node.value
            if key == "<<" and key_node.tag in (_MERGE, _PLAIN):
                merged = self.merge(build(value_node, depth), merged or {})
                continue
            if not (text_keys and key_node.__class__ is _SCALAR):
                key = self.key(key_node, depth)
            if key in out:
                self.duplicates.append(Duplicate(str(key), *_position(key_node.start_mark)))
            if value_node.__class__ is not _SCALAR:
                out[key] = build(value_node, depth)
            elif value_node.tag is _STR or (value_node.tag is _PLAIN and value_node.value in texts):
                out[key] = value_node.value
            else:
                out[key] = scalar(value_node)
        if merged:  # explicit keys win over merged ones, wherever the merge is written
            for k, v in merged.items():
                out.setdefault(k, v)
        return out

    @staticmethod
    def merge(value: Any, into: dict[Any, Any]) -> dict[Any, Any]:
        """``<<: *a`` or ``<<: [*a, *b]``: earlier sources win, as in YAML's merge key."""
        for source in value if isinstance(value, list) else [value]:
            if isinstance(source, dict):
                for k, v in source.items():
                    into.setdefault(k, v)
        return into

    def key(self, node: yaml.Node, depth: int) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return str(self.build(node, depth))
        if not self.types.typed_keys:
            return node.value
        key = self.scalar(node)
        return key if isinstance(key, int | bool) else str(key)


def _position(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def child(node: yaml.Node, part: str | int) -> tuple[Any, yaml.Node] | None:
    """The key's mark (for a mapping entry) or item's mark and the child node at ``part``, if present."""
    if isinstance(node, yaml.MappingNode):
        found: tuple[Any, yaml.Node] | None = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = (key.start_mark, value)  # the last one, as the data keeps the last
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return (item.start_mark, item)
    return None


@dataclass(frozen=True)
class NodeLocator:
    """Where fields of one document are: 1-based (line, column) of the deepest node of a path present.

    ``key=True`` points at a mapping entry's key (``size:``), else at its value (``100GB``).
    """

    root: yaml.Node

    def __call__(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        node = self.root
        mark = node.start_mark
        for part in path:
            found = child(node, part)
            if found is None:
                break
            key_mark, node = found
            mark = key_mark if key else node.start_mark
        return _position(mark)

    def at(self, path: Path) -> NodeLocator:
        """The locator of a sub-document (an item of a ``List``), positions still in the whole text."""
        node = self.root
        for part in path:
            found = child(node, part)
            if found is None:
                break
            node = found[1]
        return NodeLocator(node)
