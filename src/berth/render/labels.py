"""The labels and names every rendered object shares (``app.kubernetes.io/*``)."""

from __future__ import annotations

from typing import Any

from berth.spec.model import Framework, TrainingCluster

MANAGED_BY = "berth"
FIELD_MANAGER = "berth"


def app_name(spec: TrainingCluster) -> str:
    """``app.kubernetes.io/name``: the framework, so dashboards can group by it."""
    fw = spec.spec.framework
    return "training" if fw is Framework.NONE else f"{fw.value}-training"


def selector(spec: TrainingCluster) -> dict[str, str]:
    """Labels that select this cluster's training pods (StatefulSet, Service, PDB, policies)."""
    return {
        "app.kubernetes.io/name": app_name(spec),
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/component": "training",
    }


def labels(spec: TrainingCluster, component: str) -> dict[str, str]:
    """Full label set for an object of ``component`` (training, storage, monitoring, ...)."""
    out = dict(spec.metadata.labels)
    out.update(
        {
            "app.kubernetes.io/name": app_name(spec),
            "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "berth",
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
    )
    return out


def meta(
    spec: TrainingCluster,
    name: str,
    component: str,
    *,
    namespaced: bool = True,
    annotations: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` for a rendered object."""
    out: dict[str, Any] = {"name": name}
    if namespaced:
        out["namespace"] = spec.namespace
    lab = labels(spec, component)
    if extra_labels:
        lab.update(extra_labels)
    out["labels"] = lab
    # The spec's own annotations go on every object (like kustomize's commonAnnotations), so a
    # `berth.dev/ignore` lint suppression or an owner annotation can be written in the spec.
    merged = {**spec.metadata.annotations, **(annotations or {})}
    if merged:
        out["annotations"] = merged
    return out
