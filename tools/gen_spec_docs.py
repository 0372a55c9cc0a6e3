"""Generate docs/spec.md from the spec model, so the reference cannot drift from the code.

python tools/gen_spec_docs.py          # rewrite docs/spec.md
python tools/gen_spec_docs.py --check  # exit 1 when docs/spec.md is stale (used by the tests)
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from berth.spec.model import TrainingCluster

OUT = Path(__file__).resolve().parent.parent / "docs" / "spec.md"

HEADER = """# The berth spec (`berth.yaml`) — reference

Generated from `src/berth/spec/model.py` by `tools/gen_spec_docs.py`; do not edit by hand.
`berth schema` prints the same as JSON Schema for editors; `berth init` writes a commented starter.

Unknown fields are errors. Quantities are Kubernetes quantities (`100Gi`, `500m`); durations are Go
durations (`720h`); names are DNS-1123 labels. Every error names `file:line:col`, the field path and a fix.
"""


def _type(annotation: Any) -> str:
    """Readable type: ``int``, ``quantity``, ``list of string``, ``one of a, b``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        kube = [m for m in args[1:] if hasattr(m, "docs")]  # berth.spec.kubeschema.KubeSchema
        if kube:
            return str(kube[0].docs)
        names = {getattr(m, "func", None).__name__ for m in args[1:] if getattr(m, "func", None)}  # type: ignore[union-attr]
        for validator, name in (
            ("_quantity", "quantity"),
            ("_duration", "duration"),
            ("_cron", "cron"),
            ("_absolute_path", "absolute path"),
            ("_dns_label", "DNS label"),
            ("_dns_subdomain", "DNS subdomain"),
        ):
            if validator in names:
                return name
        return _type(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    if origin in (Union, UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1])}"
    return {"str": "string", "int": "integer", "bool": "boolean"}.get(
        getattr(annotation, "__name__", ""), str(annotation)
    )


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for field in model.model_fields.values():
            for sub in _nested(field.annotation):
                walk(sub)

    walk(root)
    return seen


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _nested(arg)]


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return "`{}`" if field.default_factory is dict else "`[]`" if field.default_factory is list else "(object)"
    value = getattr(field.default, "value", field.default)
    return "—" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"


def render() -> str:
    """The whole reference page."""
    parts = [HEADER]
    for model in _models(TrainingCluster):
        parts.append(f"\n## {model.__name__}\n\n{(model.__doc__ or '').strip()}\n")
        parts.append("| field | type | default | notes |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            nested = _nested(field.annotation)
            link = f"[{nested[0].__name__}](#{nested[0].__name__.lower()})" if nested else ""
            kind = link if nested and get_origin(field.annotation) is not dict else _type(field.annotation)
            if nested and get_origin(field.annotation) is dict:
                kind = f"map of name to {link}"
            kube = [m for m in field.metadata if hasattr(m, "docs")]  # a Kubernetes object, not re-modelled
            kind = (str(kube[0].docs) if kube else kind).replace("|", "\\|")
            notes = (field.description or "").replace("|", "\\|")
            parts.append(f"| `{field.alias or name}` | {kind} | {_default(field)} | {notes} |")
    return "\n".join(parts) + "\n"


def main() -> None:
    """Write or check docs/spec.md."""
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python tools/gen_spec_docs.py", file=sys.stderr)
            sys.exit(1)
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
