"""Strict offline schema validation: Kubernetes OpenAPI schemas plus bundled and user CRDs.

The Kubernetes JSON schemas come from the installed ``kubernetes-validate`` package (its
``*-local-strict`` sets reject unknown fields); nothing is vendored here. Each
(version, apiVersion, kind) schema is compiled once per process with jsonschema_rs and
reused; ``iter_errors`` yields every error of an object, not just the first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from typing import Any

import jsonschema_rs

from berth.errors import UsageError
from berth.lint.cel import CelChecker, CelRule, crd_rules
from berth.lint.model import Obj, Path
from berth.spec.kubeschema import installed_versions, schema_root, violations
from berth.yamlsource import YamlError, build, compose_all

_DEFS_URI = "file:///api/_definitions.json"
_OBJECT_META = {"$ref": _DEFS_URI + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
_BUNDLED = "berth.lint.schemas"


@dataclass(frozen=True)
class SchemaError:
    """One schema violation at a key path of the object."""

    path: Path
    message: str


@cache
def available_versions() -> tuple[str, ...]:
    """Kubernetes minor versions with strict schemas installed, oldest first (``"1.37"``)."""
    return tuple(f"{major}.{minor}" for major, minor in sorted(installed_versions()))


def resolve_version(requested: str | None) -> str:
    """The installed schema version to use: newest by default, else the newest not after ``requested``."""
    versions = available_versions()
    if not versions:
        raise UsageError("no Kubernetes schemas found", hint="reinstall the kubernetes-validate package")
    if not requested:
        return versions[-1]
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", requested.strip())
    if not match:
        raise UsageError(f"invalid --kubernetes-version {requested!r}", hint="use MAJOR.MINOR, e.g. 1.31")
    wanted = (int(match[1]), int(match[2]))
    older = [v for v in versions if tuple(int(p) for p in v.split(".")) <= wanted]
    if not older:
        raise UsageError(
            f"Kubernetes {requested} is older than the installed schemas",
            hint=f"supported: {versions[0]} to {versions[-1]}",
        )
    return older[-1]


def api_version_slug(api_version: str) -> str:
    """``apps/v1`` -> ``apps-v1``, ``rbac.authorization.k8s.io/v1`` -> ``rbac-v1``, ``v1`` -> ``v1``."""
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


def crd_to_json_schemas(crd: Obj) -> dict[tuple[str, str], Any]:
    """JSON schemas keyed by (apiVersion, kind) for each served version of a CRD, made strict.

    Structural CRD schemas are OpenAPI v3: ``nullable`` and ``x-kubernetes-int-or-string``
    become JSON-schema types, and objects with ``properties`` reject unknown fields unless
    they say ``x-kubernetes-preserve-unknown-fields`` (the same rule the API server applies).
    """
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    kind = (spec.get("names") or {}).get("kind", "")
    out: dict[tuple[str, str], Any] = {}
    for version in spec.get("versions") or []:
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object"}
        strict = _strict(schema)
        props = strict.setdefault("properties", {})
        props["metadata"] = _OBJECT_META
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        strict["additionalProperties"] = False
        out[(f"{group}/{version['name']}", kind)] = strict
    return out


def crd_cel_rules(crd: Obj) -> dict[tuple[str, str], tuple[CelRule, ...]]:
    """The CEL validation rules of each served version of a CRD, keyed like ``crd_to_json_schemas``."""
    spec = crd.get("spec") or {}
    kind = (spec.get("names") or {}).get("kind", "")
    out: dict[tuple[str, str], tuple[CelRule, ...]] = {}
    for version in spec.get("versions") or []:
        rules = crd_rules((version.get("schema") or {}).get("openAPIV3Schema"))
        if rules:
            out[(f"{spec.get('group', '')}/{version['name']}", kind)] = tuple(rules)
    return out


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in {"nullable", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}:
            continue
        if key.startswith("x-kubernetes-") or key in {"description", "example", "externalDocs"}:
            continue
        if key in {"properties", "patternProperties"} and isinstance(value, dict):
            out[key] = {name: _nullable(_strict(sub)) for name, sub in value.items()}
        else:
            out[key] = _strict(value) if key != "enum" else value
    if isinstance(out.get("required"), list) and isinstance(node.get("properties"), dict):
        # the API server applies defaults before validating: a defaulted field is never missing
        props = node["properties"]
        out["required"] = [r for r in out["required"] if not (isinstance(props.get(r), dict) and "default" in props[r])]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _nullable(field: Any) -> Any:
    """A field's schema that also takes null: the API server prunes a null field of a custom resource.

    (Non-nullable fields set to null are dropped before defaulting and validation, so
    ``spec:`` left empty under a comment is no error.)
    """
    if isinstance(field, dict) and isinstance(field.get("type"), str):
        return {**field, "type": [field["type"], "null"]}
    return field


_SCHEMA_DIR_HINT = "--schema-dir takes CRD manifests or Kubernetes JSON schema files"


def _load_schema_file(path: str) -> Iterable[tuple[tuple[str, str], Any, tuple[CelRule, ...]]]:
    """Schemas found in one ``--schema-dir`` file: CRD manifests or Kubernetes-style JSON schemas.

    A file that cannot be read or parsed, or a CRD without the expected shape, is a usage
    error naming the file: these are the user's inputs, so no traceback.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
        # berth's one YAML layer, as manifests are read: bounded, and plain scalars such as the
        # `=` of upstream CRD enums (PyYAML's 1.1 `value` tag) are strings, not errors.
        docs = [build(node).data for node in compose_all(text) if node is not None]
    except (OSError, ValueError) as err:  # ValueError: not UTF-8
        problem = " ".join(str(err).split())
        raise UsageError(f"{path}: cannot read schema file: {problem}", hint=_SCHEMA_DIR_HINT) from None
    except YamlError as err:
        where = f" (line {err.line}, column {err.column})" if err.line else ""
        raise UsageError(f"{path}: cannot read schema file: {err.message}{where}", hint=_SCHEMA_DIR_HINT) from None
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "CustomResourceDefinition":
            try:
                schemas = crd_to_json_schemas(doc)
                rules = crd_cel_rules(doc)
            except (AttributeError, KeyError, TypeError) as err:
                raise UsageError(
                    f"{path}: malformed CustomResourceDefinition ({type(err).__name__}: {err})",
                    hint="check it with kubectl apply --dry-run=server",
                ) from None
            for key, schema in schemas.items():
                yield key, _meta_checked(path, key, schema), rules.get(key, ())
            continue
        props = doc.get("properties") or {}
        kinds = (props.get("kind") or {}).get("enum") or []
        api_versions = (props.get("apiVersion") or {}).get("enum") or []
        if len(kinds) == 1 and len(api_versions) == 1:
            key = (api_versions[0], kinds[0])
            yield key, _meta_checked(path, key, doc), ()
            continue
        raise UsageError(
            f"{path}: not a CustomResourceDefinition nor a JSON schema with kind/apiVersion enums",
            hint=_SCHEMA_DIR_HINT,
        )


def _meta_checked(path: str, key: tuple[str, str], schema: Any) -> Any:
    """The schema if it is a valid JSON schema; else a usage error now, not a traceback mid-lint."""
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as err:
        raise UsageError(
            f"{path}: invalid JSON schema for {key[0]} {key[1]}: {str(err).splitlines()[0]}", hint=_SCHEMA_DIR_HINT
        ) from None
    return schema


class SchemaStore:
    """Compiled validators for one Kubernetes version, compiled lazily and cached."""

    def __init__(self, version: str | None = None, schema_dirs: Iterable[str] = ()) -> None:
        self.version = resolve_version(version)
        self._dir = schema_root() / f"v{self.version}.0-local-strict"
        self._registry: jsonschema_rs.Registry | None = None
        self._validators: dict[tuple[str, str], Any] = {}
        self._custom: dict[tuple[str, str], Any] = dict(bundled_schemas())
        self._rules: dict[tuple[str, str], tuple[CelRule, ...]] = dict(bundled_rules())
        self.cel = CelChecker()
        for directory in schema_dirs:
            if not os.path.isdir(directory):
                raise UsageError(f"--schema-dir {directory}: not a directory")
            for dirpath, _dirs, files in os.walk(directory):
                for name in sorted(files):
                    if name.endswith((".json", ".yaml", ".yml")):
                        for key, schema, rules in _load_schema_file(os.path.join(dirpath, name)):
                            self._custom[key] = schema
                            self._rules[key] = rules

    def _defs_registry(self) -> jsonschema_rs.Registry:
        if self._registry is None:
            with open(self._dir / "_definitions.json", "rb") as fh:
                defs = json.load(fh)
            self._registry = jsonschema_rs.Registry([(_DEFS_URI, defs)])
        return self._registry

    def warm(self) -> None:
        """Read what every validator shares now (before forking workers, which then inherit it)."""
        self._defs_registry()

    def validator(self, api_version: str, kind: str) -> Any | None:
        """The compiled validator for a type, or None when no schema knows it."""
        key = (api_version, kind)
        if key in self._validators:
            return self._validators[key]
        schema = self._custom.get(key)
        if schema is None:
            path = self._dir / f"{kind.lower()}-{api_version_slug(api_version)}.json"
            if "/" in kind or not path.is_file():
                self._validators[key] = None
                return None
            with open(path, "rb") as fh:
                schema = json.load(fh)
        try:
            compiled = jsonschema_rs.validator_for(
                schema, registry=self._defs_registry(), base_uri="file:///api/schema.json"
            )
        except (ValueError, jsonschema_rs.ValidationError):  # a schema jsonschema-rs cannot compile
            compiled = None  # the type is then reported as skipped (no schema), not a traceback
        if compiled is None:
            self._validators[key] = None
            return None
        self._validators[key] = compiled
        return compiled

    def knows(self, api_version: str, kind: str) -> bool:
        """Whether a schema exists for this type (unknown types are reported as skipped)."""
        return self.validator(api_version, kind) is not None

    def validate(self, obj: Obj) -> list[SchemaError] | None:
        """All schema errors of ``obj``; None when its type has no schema (skipped, not valid)."""
        key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        validator = self.validator(*key)
        if validator is None:
            return None
        errors = [] if validator.is_valid(obj) else list(_errors(validator.iter_errors(obj)))
        rules = self._rules.get(key)
        if rules:  # the CRD's CEL rules, as the API server evaluates them next to the schema
            errors.extend(SchemaError(b.path, b.message) for b in self.cel.check(obj, rules))
        return errors


def _errors(raw: Iterator[Any]) -> Iterator[SchemaError]:
    for path, what, detail in violations(raw):
        if what == "unknown":
            yield SchemaError(path, f"unknown field {detail!r}")
        elif what == "required":
            yield SchemaError(path, f"missing required field {detail!r}")
        else:
            yield SchemaError(path, detail)


@cache
def _bundled_crds() -> tuple[Obj, ...]:
    """The CRDs berth itself emits (Prometheus operator, Velero, CSI snapshots) and those of the training
    resources it lints (Kubeflow, JobSet, LeaderWorkerSet, Ray): one List per file."""
    out: list[Obj] = []
    # The package's folder as find_spec names it: importlib.resources (zip support berth's install
    # never needs) imported tempfile, shutil, zipfile and more, ~5 ms of every lint's start.
    spec = find_spec(_BUNDLED)
    root = next(iter(spec.submodule_search_locations or ())) if spec is not None else ""
    for name in sorted(os.listdir(root)):
        if name.endswith(".yaml"):  # read as manifests are (each process start: faster than yaml.load)
            with open(os.path.join(root, name), encoding="utf-8") as fh:
                text = fh.read()
            for node in compose_all(text):
                if node is not None:
                    out.extend(build(node).data["items"])
    return tuple(out)


@cache
def bundled_schemas() -> dict[tuple[str, str], Any]:
    """Strict JSON schemas of the bundled CRDs, keyed by (apiVersion, kind)."""
    out: dict[tuple[str, str], Any] = {}
    for crd in _bundled_crds():
        out.update(crd_to_json_schemas(crd))
    return out


@cache
def bundled_rules() -> dict[tuple[str, str], tuple[CelRule, ...]]:
    """The CEL validation rules of the bundled CRDs (as upstream's), keyed by (apiVersion, kind)."""
    out: dict[tuple[str, str], tuple[CelRule, ...]] = {}
    for crd in _bundled_crds():
        out.update(crd_cel_rules(crd))
    return out
