"""The labels and metadata every rendered object shares (names from :mod:`berth.contract`)."""

from __future__ import annotations

from typing import Any

from berth import contract
from berth.rendezvous import Framework
from berth.spec.model import TrainingCluster


def app_name(spec: TrainingCluster) -> str:
    """``app.kubernetes.io/name``: the framework, so dashboards can group by it."""
    fw = spec.spec.framework
    return "training" if fw is Framework.NONE else f"{fw.value}-training"


def selector(spec: TrainingCluster) -> dict[str, str]:
    """Labels that select this cluster's training pods (StatefulSet, Service, PDB, policies)."""
    return {
        contract.LABEL_NAME: app_name(spec),
        contract.LABEL_INSTANCE: spec.name,
        contract.LABEL_COMPONENT: contract.TRAINING_COMPONENT,
    }


def labels(spec: TrainingCluster, component: str) -> dict[str, str]:
    """Full label set for an object of ``component`` (training, storage, monitoring, ...)."""
    out = dict(spec.metadata.labels)
    out.update(
        {
            contract.LABEL_NAME: app_name(spec),
            contract.LABEL_INSTANCE: spec.name,
            contract.LABEL_COMPONENT: component,
            contract.LABEL_PART_OF: contract.PART_OF,
            contract.LABEL_MANAGED_BY: contract.MANAGED_BY,
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
