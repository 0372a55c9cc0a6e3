"""Load ``berth.yaml``: parse with positions, validate, and locate every problem in the file.

Three entries, one path: ``parse_spec`` takes text, ``spec_from_node`` a document another
reader already composed (``berth lint`` finds specs among manifests; positions stay those of
its file), ``spec_from_data`` plain data plus, optionally, a locator. All validation and
every message live in ``spec_from_data``, so ``render`` and ``lint`` say the same thing.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path as FsPath
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ValidationError

from berth.contract import API_VERSION, KIND
from berth.spec.errors import Path, SpecError, SpecIssue
from berth.spec.identify import names_a_spec
from berth.spec.model import TrainingCluster
from berth.yamlsource import NodeLocator, Schema, YamlError, build, compose_all


class Locator(Protocol):
    """1-based (line, column) of the deepest node of ``path`` present: its key or its value."""

    def __call__(self, path: Path, *, key: bool = False) -> tuple[int, int]: ...


def load_spec(path: str | FsPath) -> TrainingCluster:
    """Read and validate a spec file (``-`` for stdin); raise SpecError listing every problem."""
    name = str(path)
    if name == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        try:
            text = FsPath(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(name, [SpecIssue((), "file not found", "check the path")]) from None
        except (OSError, UnicodeDecodeError) as err:
            raise SpecError(name, [SpecIssue((), f"cannot read: {err}")]) from None
    return parse_spec(text, name)


def parse_spec(text: str, filename: str = "<spec>") -> TrainingCluster:
    """Validate spec text; positions in errors refer to ``text``."""
    try:
        docs = [root for root in compose_all(text) if root is not None and not _is_null(root)]
    except YamlError as err:
        raise SpecError(filename, [SpecIssue((), f"invalid YAML: {err.message}", None, *_where(err))]) from None
    if not docs:
        raise SpecError(filename, [SpecIssue((), "the file is empty", "run `berth init` for a starter spec")])
    if len(docs) > 1:
        raise SpecError(filename, [one_spec_per_file(len(docs))])
    return spec_from_node(docs[0], filename)


def one_spec_per_file(count: int) -> SpecIssue:
    """The rule ``render`` and ``lint`` share for a file holding ``count`` > 1 specs."""
    return SpecIssue((), f"expected one document, found {count}", "one spec per file")


def spec_from_node(root: yaml.Node, filename: str = "<spec>") -> TrainingCluster:
    """Validate a composed spec document: typed as YAML 1.2 (``yes`` is a string), located in its text."""
    try:
        built = build(root, Schema.SPEC)
    except YamlError as err:
        raise SpecError(filename, [SpecIssue((), f"invalid YAML: {err.message}", None, *_where(err))]) from None
    if built.duplicates:
        raise SpecError(
            filename,
            [
                SpecIssue((), f"duplicate key {d.key!r}", "remove one of the two", d.line, d.column)
                for d in built.duplicates
            ],
        )
    return spec_from_data(built.data, filename, NodeLocator(root))


def spec_from_data(data: Any, filename: str = "<spec>", locate: Locator | None = None) -> TrainingCluster:
    """Validate parsed spec data; ``locate`` places each problem (without it, problems carry no line)."""
    if not isinstance(data, dict):
        issue = SpecIssue((), "a spec is a YAML mapping", f"start from `berth init` (apiVersion: {API_VERSION})")
        raise SpecError(filename, [_locate(issue, locate)])
    wrong_type = _type_issue(data.get("apiVersion"), data.get("kind"))
    if wrong_type is not None:
        raise SpecError(filename, [_locate(wrong_type, locate)])
    try:
        spec = TrainingCluster.model_validate(data)
    except ValidationError as err:
        from berth.spec.validate import check_parts

        issues = _from_pydantic(err, data)
        blamed = {i.path for i in issues}
        issues += [i for i in check_parts(data) if i.path not in blamed]
        raise SpecError(filename, [_locate(i, locate) for i in issues]) from None
    from berth.spec.validate import check

    problems = check(spec)
    if problems:
        raise SpecError(filename, [_locate(i, locate) for i in problems])
    return spec


def _type_issue(api_version: object, kind: object) -> SpecIssue | None:
    """The apiVersion/kind problem, if any; a near miss of berth's own gets a did-you-mean."""
    if kind == KIND and api_version == API_VERSION:
        return None
    key = "kind" if kind != KIND else "apiVersion"
    ours = (
        names_a_spec(api_version, kind)
        if key == "apiVersion"
        else difflib.get_close_matches(str(kind or ""), [KIND], n=1, cutoff=0.8)
    )
    if ours:
        hint = f"did you mean {key}: {API_VERSION if key == 'apiVersion' else KIND}?"
    else:
        hint = "is this a Kubernetes manifest? Use `berth lint` for those"
    message = f"expected apiVersion: {API_VERSION} and kind: {KIND}, got {api_version!r} / {kind!r}"
    return SpecIssue((key,), message, hint)


def _is_null(root: yaml.Node) -> bool:
    return isinstance(root, yaml.ScalarNode) and build(root, Schema.SPEC).data is None


def _where(err: YamlError) -> tuple[int | None, int | None]:
    return (err.line, err.column) if err.line else (None, None)


def _resolve(loc: tuple[int | str, ...], data: Any) -> tuple[Path, bool]:
    """Keep the parts of a pydantic ``loc`` that exist in the data; say if it names a dict key."""
    path: list[str | int] = []
    node = data
    is_key = False
    for part in loc:
        if part == "[key]":
            is_key = True
            continue
        if _has(node, part):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_union_tag(part):
            path.append(part)  # a missing or unknown field: named, not present
            node = None
    return tuple(path), is_key


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _is_union_tag(part: str) -> bool:
    return part in {"str", "int", "float", "bool", "constrained-str", "list", "dict"} or part.startswith(
        ("function-", "literal[", "lax-", "strict-")
    )


def _from_pydantic(err: ValidationError, data: Any) -> list[SpecIssue]:
    seen: dict[Path, SpecIssue] = {}
    for e in err.errors(include_url=False):
        path, is_key = _resolve(e["loc"], data)
        kind = e["type"]
        msg = str(e["msg"]).removeprefix("Value error, ")
        if kind.endswith("_type") and not isinstance(e.get("input"), dict | list):
            msg += f", got {e['input']!r}"  # `port: "2222"`: show the quotes that make it a string
        hint: str | None = None
        if kind == "extra_forbidden":
            field = str(path[-1]) if path else "?"
            msg = f"unknown field {field!r}"
            close = difflib.get_close_matches(field, _allowed_keys(path[:-1]), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see `berth schema` for the fields"
        elif kind == "missing":
            msg = "required field is missing"
            hint = "see `berth init` for a complete example"
        elif is_key:
            msg = f"invalid name: {msg}"
        if path in seen:
            if kind.startswith(("int_", "string_", "str_")) and "or" not in seen[path].message:
                seen[path] = SpecIssue(path, _union_message(seen[path].message, msg), seen[path].hint)
            continue
        seen[path] = SpecIssue(path, msg, hint)
    return list(seen.values())


def _union_message(first: str, second: str) -> str:
    return f"{first}, or {second[0].lower()}{second[1:]}"


def _allowed_keys(parent: Path) -> list[str]:
    """Field names valid at ``parent``: walk the model by path to give a did-you-mean hint."""
    model: type[BaseModel] | None = TrainingCluster
    for part in parent:
        if model is None:
            return []
        field = _fields(model).get(str(part))
        if field is None:
            # a dict entry (volume name, class name): stay on the dict's value model
            continue
        model = field
    return sorted(_aliases(model)) if model else []


@cache
def _aliases(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(f.alias or n for n, f in model.model_fields.items())


def _fields(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Alias → nested model class (through dict/list/Optional), None for scalars."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, f in model.model_fields.items():
        out[f.alias or name] = next(_models_in(f.annotation), None)
    return out


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)


def _locate(issue: SpecIssue, locate: Locator | None) -> SpecIssue:
    """Attach the line/col of ``issue.path``: a misnamed key points at the key, anything else at the value."""
    if locate is None:
        return issue
    line, col = locate(issue.path, key=issue.message.startswith(("unknown field", "invalid name")))
    return SpecIssue(issue.path, issue.message, issue.hint, line, col)
