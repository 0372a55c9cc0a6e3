"""Wait for a rollout: every wanted pod Ready on the new revision, every claim of those pods Bound.

Polls the same constant-cost snapshot ``berth status`` uses (three requests per poll) and
hands each snapshot with its :class:`Readiness` to a ``progress`` callback, so a caller can
show it live (the CLI draws a table per pod); this module draws nothing. On timeout the error
carries the scheduler's and kubelet's messages, so the user learns *why* (no node with a free
GPU, a claim its provisioner cannot bind).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from berth.errors import BerthError
from berth.kube.status import ClusterState, collect

if TYPE_CHECKING:
    from berth.kube.client import Kube

POLL_S = 1.0  # between snapshots while waiting: 3 API calls each


@dataclass(frozen=True)
class Readiness:
    """Whether a snapshot is done, and a one-line account of what is missing."""

    done: bool
    summary: str
    blockers: list[str]


def readiness(state: ClusterState, *, claims_gone_below: int = 0) -> Readiness:
    """Done when the controller caught up, wanted pods are ready and current, their claims Bound.

    ``claims_gone_below``: orphaned claims with a lower ordinal must be gone too (whenScaled: Delete).
    """
    wanted = state.replicas
    pods = {p.ordinal: p for p in state.pods if p.ordinal is not None}
    ready = [
        p
        for p in pods.values()
        if p.ready and (p.ordinal or 0) < wanted and (not state.update_revision or p.revision == state.update_revision)
    ]
    live_claims = [c for c in state.claims if c.ordinal is not None and c.ordinal < wanted]
    bound = [c for c in live_claims if c.phase == "Bound"]
    expected_claims = wanted * len(state.templates)
    extra = [p for p in pods.values() if (p.ordinal or 0) >= wanted]
    blockers: list[str] = []
    if not state.exists:
        blockers.append(f"StatefulSet {state.name} does not exist")
    if not state.generation_observed:
        blockers.append("the StatefulSet controller has not observed the latest change")
    for ordinal in range(wanted):
        pod = pods.get(ordinal)
        if pod is None:
            blockers.append(f"{state.name}-{ordinal}: not created yet")
        elif pod not in ready:
            why = pod.reason or pod.phase
            if pod.ready and state.update_revision and pod.revision != state.update_revision:
                why = "ready on the old revision, waiting to be replaced"
            blockers.append(f"{pod.name}: {why}")
    if state.exists and not blockers and state.ready_replicas < wanted:
        # Pods are Ready before the controller counts them; like `kubectl rollout status`, wait for its count.
        blockers.append(f"StatefulSet status counts {state.ready_replicas}/{wanted} ready (controller catching up)")
    blockers += [f"claim {c.name}: {c.phase}" for c in live_claims if c.phase != "Bound"]
    blockers += [f"{p.name}: still running after scale-down" for p in extra]
    gone_pending = [c for c in state.orphans if (c.ordinal or 0) < claims_gone_below]
    blockers += [f"claim {c.name}: waiting for the controller to delete it" for c in gone_pending]
    summary = f"{state.name}: {len(ready)}/{wanted} pods ready, {len(bound)}/{expected_claims} claims Bound" + (
        f", {len(extra)} pods terminating" if extra else ""
    )
    return Readiness(done=not blockers, summary=summary, blockers=blockers)


Progress = Callable[[ClusterState, Readiness], None]
"""Called with every snapshot ``wait_ready`` polls and its readiness, the last one included."""


def wait_ready(
    kube: Kube,
    name: str,
    namespace: str,
    *,
    timeout_s: float,
    progress: Progress | None = None,
    claims_gone_below: int = 0,
) -> ClusterState:
    """Poll until ready or raise BerthError after ``timeout_s`` with every blocker named."""
    start = time.monotonic()
    while True:
        state = collect(kube, name, namespace, nodes=False)
        status = readiness(state, claims_gone_below=claims_gone_below)
        if progress is not None:
            progress(state, status)
        if status.done:
            return state
        if time.monotonic() - start >= timeout_s:
            shown = "; ".join(status.blockers[:5])
            more = len(status.blockers) - 5
            raise BerthError(
                f"{name} not ready after {timeout_s:.0f}s: {status.summary}; {shown}"
                + (f"; and {more} more" if more > 0 else ""),
                f"`berth status {name} -n {namespace}` shows every pod and claim; "
                "`kubectl describe` the pod for events",
            )
        time.sleep(POLL_S)
