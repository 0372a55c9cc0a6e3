"""``.berth-lint.yaml``: enable/disable rules, severity overrides, ignored paths.

Found like ruff finds its configuration: ``--config`` if given, else the nearest
``.berth-lint.yaml`` in the directory of the inputs or any parent directory.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml

from berth.errors import UsageError
from berth.lint.model import Severity
from berth.lint.rules import all_rules
from berth.lint.specs import RENDERED_SUFFIX

CONFIG_NAME = ".berth-lint.yaml"
_KEYS = {
    "enable",
    "disable",
    "severity",
    "ignore-paths",
    "per-file-ignores",
    "fail-on",
    "kubernetes-version",
    "known-storage-classes",
}


@dataclass
class LintConfig:
    """Effective lint settings of a run."""

    path: str | None = None
    disabled: frozenset[str] = frozenset()
    severity: dict[str, Severity] = field(default_factory=dict)
    ignore_paths: tuple[str, ...] = ()
    fail_on: Severity | None = None
    kubernetes_version: str | None = None
    known_storage_classes: frozenset[str] = frozenset()
    per_file_ignores: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()

    def ignores(self, file: str) -> bool:
        """Whether a file matches ``ignore-paths`` (globs relative to the config's directory)."""
        if not self.ignore_paths or file.startswith("<"):
            return False
        rel = os.path.relpath(os.path.abspath(file), self.root).replace(os.sep, "/")
        return any(
            fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern.rstrip("/") + "/") for pattern in self.ignore_paths
        )

    def _relative(self, file: str) -> str:
        return os.path.relpath(os.path.abspath(file), self.root).replace(os.sep, "/")

    def ignored_rule(self, file: str, rule: str) -> bool:
        """Whether ``per-file-ignores`` suppresses ``rule`` in ``file`` (always with a reason)."""
        if not self.per_file_ignores or file.startswith("<"):
            return False
        rel = self._relative(file.removesuffix(RENDERED_SUFFIX))
        return any(rule in rules and fnmatch.fnmatch(rel, glob) for glob, rules in self.per_file_ignores.items())

    def severity_of(self, rule: str, default: Severity) -> Severity:
        return self.severity.get(rule, default)


def find_config(paths: Iterable[str]) -> str | None:
    """The nearest ``.berth-lint.yaml`` above the inputs (or the working directory for stdin)."""
    dirs = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in paths if p != "-"]
    start = os.path.commonpath(dirs) if dirs else os.getcwd()
    current = start
    while True:
        candidate = os.path.join(current, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _rule_list(value: object, key: str, path: str, known: set[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: {key} must be a list of rule ids")
    unknown = [v for v in value if v not in known and v != "all"]
    if unknown:
        raise UsageError(f"{path}: {key} names unknown rules: {', '.join(unknown)}", hint="see berth lint --list-rules")
    return list(value)


def load_config(path: str | None) -> LintConfig:
    """Parse and check a config file; any mistake is a usage error naming the file and key."""
    if path is None:
        return LintConfig()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=yaml.CSafeLoader) or {}
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise UsageError(f"{where}: cannot parse lint config: {err.problem}") from None
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: not UTF-8
        raise UsageError(f"{path}: cannot read lint config: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: lint config must be a mapping")
    unknown_keys = set(data) - _KEYS
    if unknown_keys:
        raise UsageError(f"{path}: unknown keys {sorted(unknown_keys)}", hint=f"allowed: {sorted(_KEYS)}")
    known = set(all_rules())
    enabled = set(_rule_list(data.get("enable", []), "enable", path, known))
    disabled = set(_rule_list(data.get("disable", []), "disable", path, known))
    if "all" in disabled:
        disabled = known
    disabled -= enabled
    severity: dict[str, Severity] = {}
    raw_severity = data.get("severity", {})
    if not isinstance(raw_severity, dict):
        raise UsageError(f"{path}: severity must map rule ids to error/warning/info")
    for rule, level in raw_severity.items():
        _rule_list([rule], "severity", path, known)
        try:
            severity[rule] = Severity.parse(str(level))
        except ValueError as err:
            raise UsageError(f"{path}: severity.{rule}: {err}") from None
    ignore_paths = data.get("ignore-paths", [])
    classes = data.get("known-storage-classes", [])
    if not isinstance(ignore_paths, list) or not isinstance(classes, list):
        raise UsageError(f"{path}: ignore-paths and known-storage-classes must be lists")
    per_file = _per_file_ignores(data.get("per-file-ignores", {}), path, known)
    fail_on = data.get("fail-on")
    try:
        fail = Severity.parse(str(fail_on)) if fail_on is not None else None
    except ValueError as err:
        raise UsageError(f"{path}: fail-on: {err}") from None
    version = data.get("kubernetes-version")
    return LintConfig(
        path=path,
        disabled=frozenset(disabled),
        severity=severity,
        ignore_paths=tuple(str(p) for p in ignore_paths),
        fail_on=fail,
        kubernetes_version=str(version) if version is not None else None,
        known_storage_classes=frozenset(str(c) for c in classes),
        per_file_ignores=per_file,
    )


def _per_file_ignores(value: object, path: str, known: set[str]) -> dict[str, dict[str, str]]:
    """``{glob: {rule-id: reason}}``; like a ``berth.dev/ignore`` annotation, a reason is required."""
    if not isinstance(value, dict):
        raise UsageError(f"{path}: per-file-ignores must map globs to {{rule-id: reason}}")
    out: dict[str, dict[str, str]] = {}
    for glob, rules in value.items():
        if not isinstance(rules, dict):
            raise UsageError(f"{path}: per-file-ignores.{glob} must map rule ids to reasons")
        _rule_list(list(rules), f"per-file-ignores.{glob}", path, known)
        for rule, reason in rules.items():
            if not str(reason or "").strip():
                raise UsageError(f"{path}: per-file-ignores.{glob}.{rule} needs a reason")
        out[str(glob)] = {str(k): str(v) for k, v in rules.items()}
    return out
