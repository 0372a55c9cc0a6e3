"""Change the replica count by re-rendering the stored spec, so the world size in the pods follows.

Training pods read their world size from ``BERTH_REPLICAS`` in the pod template; a plain
``kubectl scale`` would leave every pod believing the old size. ``berth scale`` renders
the spec ``berth up`` stored on the StatefulSet with the new count and applies it: the
template changes, so the pods are replaced and resume from their checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError, UsageError
from berth.kube.apply import ObjectResult, apply_objects, stored_spec
from berth.kube.preflight import checked_stack, refuse_operator_managed
from berth.kube.status import ClaimRow, ClusterState, collect

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.kube.wait import Progress


@dataclass
class ScaleResult:
    """What changed, whether pods restart, and the claims scale-down left behind."""

    name: str
    namespace: str
    before: int
    after: int
    results: list[ObjectResult]
    restarts: bool
    when_scaled: str
    left_behind: list[ClaimRow] = field(default_factory=list)
    state: ClusterState | None = None

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "from": self.before,
            "to": self.after,
            "podsRestart": self.restarts,
            "whenScaled": self.when_scaled,
            "objects": [r.to_json() for r in self.results],
            "leftBehind": [
                {"name": c.name, "template": c.template, "ordinal": c.ordinal, "size": c.capacity or c.requested}
                for c in self.left_behind
            ],
        }


def scale(
    kube: Kube,
    name: str,
    namespace: str,
    replicas: int,
    *,
    wait: bool = False,
    timeout_s: float = 300,
    progress: Progress | None = None,
) -> ScaleResult:
    """Set ``replicas``; with ``wait``, return once the new set is ready (and deleted claims gone).

    Refused (exit 3) when a TrainingCluster manages the cluster: the operator would set it back.
    """
    from pydantic import ValidationError

    refuse_operator_managed(kube, name, namespace, "scale")
    state = collect(kube, name, namespace, nodes=False)
    assert state.statefulset is not None
    spec = stored_spec(state.statefulset)
    if spec is None:
        raise BerthError(
            f"StatefulSet {namespace}/{name} was not created by `berth up` (no spec stored on it)",
            "berth scale re-renders the spec so the world size follows; use `berth up SPEC` with "
            "the new replicas, or kubectl scale if the pods do not depend on the world size",
        )
    try:
        spec.spec.replicas = replicas
    except ValidationError as err:
        raise UsageError(
            f"cannot scale to {replicas}: {err.errors()[0]['msg']}",
            "replicas is at least 1; `berth down` removes the cluster",
        ) from None
    from berth.spec.validate import check

    problems = check(spec)
    if problems:
        first = problems[0]
        raise UsageError(
            f"cannot scale to {replicas}: {first.dotted}: {first.message}",
            first.hint or "change the spec and run `berth up SPEC`",
        )
    before = state.replicas
    checked = checked_stack(kube, spec)
    results = checked.in_order(apply_objects(kube, checked.to_apply()) + checked.shared)
    sts = next(r for r in results if r.kind == "StatefulSet")
    restarts = any(p.startswith("spec.template") for p in sts.changed)
    when_scaled = state.retention.get("whenScaled", "Retain")
    out = ScaleResult(name, namespace, before, replicas, results, restarts, when_scaled)
    if wait:
        from berth.kube.wait import wait_ready

        out.state = wait_ready(
            kube,
            name,
            namespace,
            timeout_s=timeout_s,
            progress=progress,
            claims_gone_below=before if when_scaled == "Delete" else 0,
        )
    else:
        out.state = collect(kube, name, namespace, nodes=False)
    out.left_behind = [c for c in out.state.orphans if not c.deleting]
    return out
