"""Write rendered objects: one multi-document YAML stream, or a directory for kustomize."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

# libyaml's emitter when PyYAML was built with it (5x faster than the pure-Python one).
_Base: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):  # type: ignore[valid-type,misc]
    """Block style, multi-line strings as literal blocks (readable preambles and configs)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Any) -> str:
    """One object as YAML, keys in the order berth built them."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def to_stream(objects: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML, ``---`` separated, in the given (apply) order."""
    return "".join(f"---\n{to_yaml(o)}" for o in objects)


def file_name(index: int, obj: dict[str, Any]) -> str:
    """``03-statefulset-ml-training.yaml``: the prefix keeps apply order when globbed."""
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def _remove_previous(directory: Path) -> None:
    """Delete the files an earlier render listed, so `kubectl apply -f DIR` sees no stale objects.

    Only files named in our own kustomization.yaml and following our naming are removed;
    anything else in the directory is the user's and stays.
    """
    import re

    kustomization = directory / "kustomization.yaml"
    if not kustomization.is_file():
        return
    try:
        listed = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return
    for name in listed.get("resources") or [] if isinstance(listed, dict) else []:
        if isinstance(name, str) and re.fullmatch(r"[0-9]{2,}-[a-z]+-[a-z0-9.-]+\.yaml", name):
            (directory / name).unlink(missing_ok=True)


def write_dir(objects: list[dict[str, Any]], directory: Path) -> list[Path]:
    """One file per object plus a kustomization.yaml listing them in order."""
    directory.mkdir(parents=True, exist_ok=True)
    _remove_previous(directory)
    written = []
    for index, obj in enumerate(objects):
        path = directory / file_name(index, obj)
        path.write_text(to_yaml(obj), encoding="utf-8")
        written.append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [p.name for p in written],
    }
    path = directory / "kustomization.yaml"
    path.write_text(to_yaml(kustomization), encoding="utf-8")
    return [*written, path]
