"""Plain data the linter passes around: severities, findings, documents."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]
Obj = dict[str, Any]


class Severity(enum.IntEnum):
    """Ordered so that ``finding.severity >= fail_on`` decides the exit code."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Severity from its lower-case name (``error``, ``warning``, ``info``)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use error, warning or info)") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class DocRef:
    """Where an object came from: file, YAML document, and item of a ``List`` kind."""

    file: str
    doc: int
    item: int | None = None


@dataclass
class Document:
    """One Kubernetes object of the input and the place it was read from.

    Its identity (kind, apiVersion, metadata, name, namespace) is read once, when it is made:
    every rule and every finding asks for it, and a ``cached_property`` (with its lock) cost
    more than reading the five fields of every object up front.
    """

    ref: DocRef
    obj: Obj
    # Values rules derive from the object (its pod spec, labels), computed once per object.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # A view of one pod template inside a custom resource (JobSet, PyTorchJob, ...): the resource
    # it was taken from, and how a key path in the view maps to one in that resource.
    origin: Document | None = field(default=None, repr=False, compare=False)
    translate: Callable[[Path], Path | None] | None = field(default=None, repr=False, compare=False)
    kind: str = field(init=False, repr=False, compare=False)
    api_version: str = field(init=False, repr=False, compare=False)
    metadata: Mapping[str, Any] = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)
    namespace: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        obj = self.obj
        self.kind = str(obj.get("kind", ""))
        self.api_version = str(obj.get("apiVersion", ""))
        meta = obj.get("metadata")
        self.metadata = meta if isinstance(meta, dict) else {}
        self.name = str(self.metadata.get("name", ""))
        self.namespace = str(self.metadata.get("namespace") or "")

    @property
    def annotations(self) -> Mapping[str, Any]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}


@dataclass
class Finding:
    """One problem: which rule, how bad, where, and how to fix it."""

    rule: str
    severity: Severity
    message: str
    file: str
    line: int = 0
    column: int = 0
    path: Path = ()
    fix: str | None = None
    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    source_line: str = field(default="", compare=False)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.rule)

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` record (one per finding)."""
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": path_text(self.path),
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "message": self.message,
            "fix": self.fix,
        }


def path_text(path: Path) -> str:
    """``spec.template.spec.containers[0].image`` from a key path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
