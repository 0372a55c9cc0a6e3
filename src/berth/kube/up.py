"""``berth up``: apply the stack, then wait for the rollout; says when nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.kube.apply import ObjectResult, apply_objects
from berth.kube.preflight import checked_stack
from berth.kube.status import ClusterState

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.kube.wait import Progress
    from berth.spec.model import TrainingCluster


@dataclass
class UpResult:
    """Per-object outcome and, when waited for, the ready state."""

    name: str
    namespace: str
    results: list[ObjectResult]
    state: ClusterState | None = None

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return any(r.action in ("create", "update", "pruned") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        out: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "changed": self.changed,
            "objects": [r.to_json() for r in self.results],
        }
        if self.state is not None:
            out["rollout"] = self.state.rollout
            out["ready"] = self.state.ready_replicas
        return out


def up(
    kube: Kube,
    spec: TrainingCluster,
    *,
    force: bool = False,
    wait: bool = True,
    timeout_s: float = 300,
    progress: Progress | None = None,
    on_result: Callable[[ObjectResult], None] | None = None,
    prune: bool = False,
) -> UpResult:
    """Apply every object in dependency order, then (``wait``) block until pods are Ready and claims Bound.

    ``on_result`` hears each object's outcome as it is applied, ``progress`` each snapshot while waiting.

    ``prune`` deletes what an older spec created and this one no longer renders (like
    ``kubectl apply --prune``), except volumes and protected objects: data is never pruned.

    A cluster-scoped class that another owner holds with other settings (or our own with a changed
    immutable setting) stops everything before the first write (:mod:`berth.kube.preflight`); one
    held with the same settings is used as it is. Whether the operator manages the cluster is the
    CLI's question (this is also the operator's own apply path).
    """
    checked = checked_stack(kube, spec)
    for result in checked.shared:
        if on_result:
            on_result(result)
    applied = apply_objects(kube, checked.to_apply(), force=force, on_result=on_result)
    results = checked.in_order(applied + checked.shared)
    if prune:
        pruned = _prune(kube, spec, checked.objects)
        for result in pruned:
            if on_result:
                on_result(result)
        results += pruned
    out = UpResult(spec.name, spec.namespace, results)
    if wait:
        from berth.kube.wait import wait_ready

        out.state = wait_ready(kube, spec.name, spec.namespace, timeout_s=timeout_s, progress=progress)
    return out


def _prune(kube: Kube, spec: TrainingCluster, objects: list[dict[str, Any]]) -> list[ObjectResult]:
    from berth.kube.deletion import delete_marked, removal
    from berth.kube.plan import leftover_objects

    removals = [
        removal(obj, volumes_kept="volume: data is never pruned", because="no longer in the spec")
        for obj in leftover_objects(kube, spec.name, spec.namespace, objects)
    ]
    delete_marked(kube, removals)
    return [
        ObjectResult(r.kind, r.name, r.namespace, "pruned" if r.deleted else "leftover", note=r.reason)
        for r in removals
    ]
