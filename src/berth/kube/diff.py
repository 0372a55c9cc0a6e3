"""Field-level differences between a live object and what applying the spec would make of it.

Paths read like kubectl's: ``spec.template.spec.containers[trainer].env[BERTH_REPLICAS].value``,
map keys with dots in brackets (``metadata.labels[app.kubernetes.io/name]``),
list items named by their ``name`` (the merge key of containers, env, ports, volumes) or
``metadata.name`` (volumeClaimTemplates) when every item has one, by index otherwise.
Server-owned bookkeeping is ignored, so an object that applying would not change
compares equal.
"""

from __future__ import annotations

from typing import Any

# Written by the API server on every change, never by berth: they say nothing about the spec.
IGNORED = frozenset(
    {
        "metadata.resourceVersion",
        "metadata.managedFields",
        "metadata.generation",
        "metadata.creationTimestamp",
        "metadata.uid",
        "status",
    }
)


def _name(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    meta = item.get("metadata")
    return item.get("name") or (meta.get("name") if isinstance(meta, dict) else None)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    keys = [_name(i) for i in items]
    if items and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
        return {str(k): i for k, i in zip(keys, items, strict=True)}
    return None


def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Every leaf path whose value differs (added, removed or changed), in document order."""
    if path in IGNORED:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in [*before, *(k for k in after if k not in before)]:
            sub = f"{path}[{key}]" if "." in str(key) else (f"{path}.{key}" if path else str(key))
            out += changed_paths(before.get(key), after.get(key), sub)
        return out
    if isinstance(before, list) and isinstance(after, list):
        kb, ka = _keyed(before), _keyed(after)
        if kb is not None and ka is not None:
            out = []
            for key in [*kb, *(k for k in ka if k not in kb)]:
                out += changed_paths(kb.get(key), ka.get(key), f"{path}[{key}]")
            return out
        if len(before) != len(after):
            return [path]
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += changed_paths(b, a, f"{path}[{i}]")
        return out
    return [] if before == after else [path]


def value_at(obj: Any, path: str) -> Any:
    """The value at a path produced by :func:`changed_paths` (None when absent)."""
    import re

    cur = obj
    for part, key in re.findall(r"([^.\[\]]+)|\[([^\]]+)\]", path):
        if part:
            cur = cur.get(part) if isinstance(cur, dict) else None
        elif isinstance(cur, dict):
            cur = cur.get(key)
        elif isinstance(cur, list):
            named = _keyed(cur)
            if named is not None:
                cur = named.get(key)
            else:
                cur = cur[int(key)] if key.isdigit() and int(key) < len(cur) else None
        else:
            cur = None
        if cur is None:
            return None
    return cur


def project(live: Any, shape: Any) -> Any:
    """``live`` cut down to the keys ``shape`` has: compares what a spec sets, ignoring server defaults."""
    if isinstance(live, dict) and isinstance(shape, dict):
        return {k: project(live[k], v) for k, v in shape.items() if k in live}
    if isinstance(live, list) and isinstance(shape, list):
        kl, ks = _keyed(live), _keyed(shape)
        if kl is not None and ks is not None:
            return [project(kl[k], v) for k, v in ks.items() if k in kl]
        if len(live) == len(shape):
            return [project(a, b) for a, b in zip(live, shape, strict=True)]
    return live
