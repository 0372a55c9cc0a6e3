"""Load ``berth.yaml``: parse with positions, validate, and locate every problem in the file."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from berth.contract import API_VERSION, KIND
from berth.spec.errors import Path, SpecError, SpecIssue
from berth.spec.model import TrainingCluster


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
    doc = _parse_yaml(text, filename)
    data = _plain(doc)
    if not isinstance(data, dict):
        raise SpecError(
            filename,
            [SpecIssue((), "a spec is a YAML mapping", f"start from `berth init` (apiVersion: {API_VERSION})", 1, 1)],
        )
    if data.get("kind") != KIND or data.get("apiVersion") != API_VERSION:
        key = "kind" if data.get("kind") != KIND else "apiVersion"
        issue = SpecIssue(
            (key,),
            f"expected apiVersion: {API_VERSION} and kind: {KIND}, got "
            f"{data.get('apiVersion')!r} / {data.get('kind')!r}",
            "is this a Kubernetes manifest? Use `berth lint` for those",
        )
        raise SpecError(filename, [_locate(issue, doc)])
    try:
        spec = TrainingCluster.model_validate(data)
    except ValidationError as err:
        from berth.spec.validate import check_parts

        issues = _from_pydantic(err, data)
        blamed = {i.path for i in issues}
        issues += [i for i in check_parts(data) if i.path not in blamed]
        raise SpecError(filename, [_locate(i, doc) for i in issues]) from None
    from berth.spec.validate import check

    problems = check(spec)
    if problems:
        raise SpecError(filename, [_locate(i, doc) for i in problems])
    return spec


def _parse_yaml(text: str, filename: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    try:
        docs = [d for d in yaml.load_all(text) if d is not None]
    except DuplicateKeyError as err:
        mark = err.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError(
            filename, [SpecIssue((), f"duplicate key: {err.problem}", "remove one of the two", line, col)]
        ) from None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError(
            filename, [SpecIssue((), f"invalid YAML: {err.problem or err.context}", None, line, col)]
        ) from None
    if not docs:
        raise SpecError(filename, [SpecIssue((), "the file is empty", "run `berth init` for a starter spec")])
    if len(docs) > 1:
        raise SpecError(
            filename, [SpecIssue((), f"expected one document, found {len(docs)}", "one spec per file")]
        )
    return docs[0]


def _plain(node: Any) -> Any:
    """ruamel's round-trip types → plain Python, so strict validation sees ints as ints."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, int | bool) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


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


def _locate(issue: SpecIssue, doc: Any) -> SpecIssue:
    """Attach the 1-based line/col of the deepest node of ``issue.path`` present in the document."""
    node = doc
    line, col = _node_pos(doc)
    for part in issue.path:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node and lc is not None:
            ln, cl = lc.key(part) if issue.message.startswith(("unknown field", "invalid name")) else lc.value(part)
            line, col = ln, cl
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node) and lc is not None:
            line, col = lc.item(part)
            node = node[part]
        else:
            break
    return SpecIssue(issue.path, issue.message, issue.hint, line + 1, col + 1)


def _node_pos(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0, 0
    return int(lc.line or 0), int(lc.col or 0)
