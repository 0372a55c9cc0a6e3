"""The ``podTemplate`` overlay: a strategic-merge patch on the rendered pod template.

The same rules as ``kubectl patch --type strategic`` for a PodTemplateSpec: maps merge key by
key (``null`` removes a key), lists of named things merge by their merge key (containers,
volumes, env and image pull secrets by ``name``, ports by ``containerPort``, mounts by
``mountPath``), every other list is replaced. ``$patch: delete`` on a list entry or a map
removes it; ``$patch: replace`` replaces the list or map it is in. Nothing berth rendered is
dropped unless the overlay says so, which is what the properties in
``tests/render/test_pod_features.py`` check.

Pure data in, data out: render applies it, the spec checks validate the result.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from berth.spec.errors import Path

DIRECTIVE = "$patch"
# patchMergeKey of the PodTemplateSpec lists that merge (k8s.io/api/core/v1 types.go); a list field
# not named here is replaced by the overlay's, as kubectl does for lists without a patch strategy.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


class OverlayError(ValueError):
    """A patch kubectl would refuse; ``path`` is inside the overlay."""

    def __init__(self, path: Path, message: str, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


def problems(overlay: Any) -> Iterator[OverlayError]:
    """Every structural problem of an overlay: directives kubectl does not know, entries with no merge key."""
    yield from _problems(overlay, ())


def _problems(node: Any, path: Path, field: str | None = None) -> Iterator[OverlayError]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == DIRECTIVE:
                if value not in ("replace", "delete"):
                    yield OverlayError(
                        (*path, key),
                        f"unknown directive $patch: {value!r}",
                        "use $patch: delete (remove) or $patch: replace",
                    )
            elif isinstance(key, str) and key.startswith("$"):
                yield OverlayError(
                    (*path, key),
                    f"berth does not support the {key} directive",
                    "write the result you want; lists of named things merge by name",
                )
            else:
                yield from _problems(value, (*path, key), str(key))
    elif isinstance(node, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        seen: set[Any] = set()
        for index, item in enumerate(node):
            if isinstance(item, dict) and item.get(DIRECTIVE) == "replace" and set(item) == {DIRECTIVE}:
                continue
            if not isinstance(item, dict) or key not in item:
                yield OverlayError(
                    (*path, index),
                    f"an entry of {field} needs its {key}: entries merge by {key}",
                    f"add {key}: … (an existing {key} patches that entry, a new one adds it)",
                )
                continue
            if item[key] in seen:
                yield OverlayError(
                    (*path, index, key),
                    f"{field} has two entries with {key} {item[key]!r}",
                    "merge them into one entry",
                )
            seen.add(item[key])
            yield from _problems(item, (*path, index), None)


def merge(base: Any, overlay: Any, field: str | None = None) -> Any:
    """``base`` patched by ``overlay`` (neither is modified). Call ``problems`` first: this assumes none."""
    if isinstance(overlay, dict):
        directive = overlay.get(DIRECTIVE)
        rest = {k: v for k, v in overlay.items() if k != DIRECTIVE}
        if directive == "replace" or not isinstance(base, dict):
            return {k: copy.deepcopy(v) for k, v in rest.items() if v is not None}
        out = copy.deepcopy(base)
        for key, value in rest.items():
            if value is None or (isinstance(value, dict) and value.get(DIRECTIVE) == "delete"):
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value, key)
        return out
    if isinstance(overlay, list) and field in MERGE_KEYS and isinstance(base, list):
        return _merge_list(base, overlay, MERGE_KEYS[field])
    if isinstance(overlay, list) and field in MERGE_KEYS:
        return [_strip(item) for item in overlay if not _is_directive(item)]
    return copy.deepcopy(overlay)


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and DIRECTIVE in item and (set(item) == {DIRECTIVE} or item[DIRECTIVE] == "delete")


def _strip(item: Any) -> Any:
    return merge(None, item) if isinstance(item, dict) else copy.deepcopy(item)


def _merge_list(base: list[Any], overlay: list[Any], key: str) -> list[Any]:
    if any(isinstance(i, dict) and i.get(DIRECTIVE) == "replace" and set(i) == {DIRECTIVE} for i in overlay):
        return [_strip(item) for item in overlay if not _is_directive(item)]
    out = [copy.deepcopy(item) for item in base]
    for item in overlay:
        if not isinstance(item, dict):
            continue
        at = next((i for i, b in enumerate(out) if isinstance(b, dict) and b.get(key) == item.get(key)), None)
        if item.get(DIRECTIVE) == "delete":
            if at is not None:
                del out[at]
        elif at is None:
            out.append(_strip(item))
        else:
            out[at] = merge(out[at], item)
    return out


def overlay_path(overlay: Any, merged: Any, path: Path) -> Path:
    """The deepest path in ``overlay`` that wrote ``path`` of the merged result (``()``: none of it)."""
    out: list[str | int] = []
    node, result = overlay, merged
    field: str | None = None
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not isinstance(result, list) or part >= len(result):
                break
            if field in MERGE_KEYS:
                key = MERGE_KEYS[field]
                wanted = result[part].get(key) if isinstance(result[part], dict) else None
                index = next(
                    (
                        i
                        for i, item in enumerate(node)
                        if isinstance(item, dict) and item.get(key) == wanted and item.get(DIRECTIVE) != "delete"
                    ),
                    None,
                )
            else:
                index = part if part < len(node) else None
            if index is None:
                break
            out.append(index)
            node, result = node[index], result[part]
        else:
            if not isinstance(node, dict) or part not in node or not isinstance(result, dict):
                break
            out.append(part)
            node, result, field = node[part], result.get(part), part
    return tuple(out)
