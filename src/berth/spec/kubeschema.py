"""Kubernetes sub-objects in a spec, checked against the official schema instead of re-modelled.

Probes, affinity, env sources, volume sources, containers and the ``podTemplate`` overlay are
Kubernetes objects written into a berth spec. Their schema is the one ``berth lint`` uses: the
strict JSON schemas of the installed ``kubernetes-validate`` package (unknown fields rejected),
newest Kubernetes version. Each error keeps its path inside the object, so the spec loader points
at the exact line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path as FsPath
from typing import Any

import jsonschema_rs

from berth.spec.errors import Path, SpecIssue

_DEFS_URI = "file:///api/_definitions.json"
_PREFIX = "io.k8s.api.core.v1."


@dataclass(frozen=True)
class KubeSchema:
    """Marks a spec field that holds a Kubernetes object of type ``kind`` (core/v1), e.g. ``Probe``."""

    kind: str

    @property
    def docs(self) -> str:
        """How the spec reference names the type."""
        return f"Kubernetes {self.kind}"


def schema_root() -> FsPath:
    """Where the installed ``kubernetes-validate`` keeps its JSON schemas, one folder per version.

    Found without importing the package: its ``__init__`` imports jsonschema (~0.15 s of lint's start-up).
    """
    found = find_spec("kubernetes_validate")
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError("kubernetes-validate is not installed (berth depends on it: reinstall berth)")
    return FsPath(found.submodule_search_locations[0]) / "kubernetes-json-schema"


def installed_versions() -> dict[tuple[int, int], FsPath]:
    """Kubernetes (major, minor) -> its strict schema folder, for every version installed."""
    found = {}
    for entry in schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found[(int(match[1]), int(match[2]))] = entry
    return found


def _schema_dir() -> FsPath:
    versions = installed_versions()
    return versions[max(versions)]


def violations(raw: Iterable[Any]) -> Iterator[tuple[Path, str, str]]:
    """jsonschema-rs errors as (path, what, detail): ``unknown`` (detail: the key, path to it),
    ``required`` (detail: the missing field) or ``invalid`` (detail: a short message).

    The one reading of the validator's error kinds; the spec loader and ``berth lint`` each
    word the first two in their own style.
    """
    for err in raw:
        path: Path = tuple(err.instance_path)
        error_kind = err.kind
        unexpected = getattr(error_kind, "unexpected", None)
        if unexpected is not None:
            for key in unexpected:
                yield (*path, str(key)), "unknown", str(key)
            continue
        missing = getattr(error_kind, "property", None)
        if missing is not None and type(error_kind).__name__ == "Required":
            yield path, "required", str(missing)
            continue
        yield path, "invalid", _message(err)


@cache
def _definitions() -> dict[str, Any]:
    with open(_schema_dir() / "_definitions.json", "rb") as fh:
        defs: dict[str, Any] = json.load(fh)
    return defs


@cache
def _validator(kind: str) -> Any:
    registry = jsonschema_rs.Registry([(_DEFS_URI, _definitions())])
    schema = {"$ref": f"{_DEFS_URI}#/$defs/{_PREFIX}{kind}"}
    return jsonschema_rs.validator_for(schema, registry=registry, base_uri="file:///api/schema.json")


def errors(obj: Any, kind: str) -> Iterator[tuple[Path, str]]:
    """(path inside ``obj``, message) for each schema violation of ``obj`` as a core/v1 ``kind``."""
    validator = _validator(kind)
    if validator.is_valid(obj):
        return
    for path, what, detail in violations(validator.iter_errors(obj)):
        if what == "unknown":
            yield path, f"unknown field {detail!r} in a {kind}"
        elif what == "required":
            yield path, f"required field {detail!r} is missing"
        else:
            yield path, detail


def issues(obj: Any, kind: str, at: Path, *, hint: str | None = None) -> Iterator[SpecIssue]:
    """The schema errors of ``obj`` as spec issues under the spec path ``at``."""
    seen: set[Path] = set()
    for path, message in errors(obj, kind):
        if path in seen:  # a value failing every branch of an int-or-string is one problem
            continue
        seen.add(path)
        yield SpecIssue((*at, *path), message, hint or f"see the Kubernetes API reference for {kind}")


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def _message(err: Any) -> str:
    """A short message; the field path is reported separately, so it is not repeated here."""
    kind_name = type(err.kind).__name__
    instance = err.instance
    got = f"{_JSON_TYPES.get(type(instance), 'null')} {json.dumps(instance)[:60]}"
    if kind_name == "Type":
        expected = [str(t) for t in err.kind.types if t != "null"]
        return f"expected {' or '.join(expected)}, got {got}"
    if kind_name in {"OneOfNotValid", "AnyOf"}:
        return f"{got} is none of the allowed forms (int-or-string and quantity fields take a string or a number)"
    return str(err.message)
