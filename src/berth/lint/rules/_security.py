"""Effective security settings: the container's value, else the pod's."""

from __future__ import annotations

from typing import Any

from berth.lint.model import Obj
from berth.lint.rules._pod import as_dict


def effective(pod_spec: Obj, container: Obj, key: str) -> Any:
    """A securityContext field as the kubelet applies it (container overrides pod)."""
    container_sc = as_dict(container.get("securityContext"))
    if key in container_sc:
        return container_sc[key]
    return as_dict(pod_spec.get("securityContext")).get(key)
