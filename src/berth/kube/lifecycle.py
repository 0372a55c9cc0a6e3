"""``berth wait``: poll the constant-cost status snapshot until the run completes or the pods are ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from berth.errors import UsageError
from berth.kube.status import ClusterState, collect
from berth.kube.wait import readiness

if TYPE_CHECKING:
    from berth.kube.client import Kube

POLL_S = 2.0
Until = Literal["complete", "ready"]
# What `berth wait` exits with: 0 done, 1 the run Failed, 2 timed out.
EXIT_CODES = {"Succeeded": 0, "Ready": 0, "Failed": 1, "Timeout": 2}


@dataclass
class WaitResult:
    """How the wait ended (``Succeeded``, ``Ready``, ``Failed`` or ``Timeout``) and the last snapshot."""

    result: str
    state: ClusterState
    waited_s: float

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.state.name,
            "namespace": self.state.namespace,
            "result": self.result,
            "exitCode": self.exit_code,
            "waitedSeconds": round(self.waited_s, 1),
            "run": self.state.run.to_json() if self.state.run else None,
            "readyReplicas": self.state.ready_replicas,
            "replicas": self.state.replicas,
        }


def outcome(state: ClusterState, until: Until) -> str | None:
    """``Succeeded``/``Failed``/``Ready`` when the wait is over, None to keep waiting (pure)."""
    run = state.run
    if until == "complete" and run is None:
        raise UsageError(
            f"{state.name} has no spec.lifecycle: its pods never complete",
            hint="add `lifecycle: {}` to the spec and `berth up` it, or use --for ready",
        )
    if run is not None and run.phase in ("Succeeded", "Failed"):
        return run.phase if until == "complete" or run.phase == "Failed" else None
    if until == "ready" and readiness(state).done:
        return "Ready"
    return None


def wait_run(
    kube: Kube,
    name: str,
    namespace: str,
    *,
    until: Until,
    timeout: float,
    progress: Callable[[ClusterState], None] | None = None,
    poll: float = POLL_S,
) -> WaitResult:
    """Poll ``berth status``'s snapshot (no node list) until :func:`outcome` says, or ``timeout``."""
    started = time.monotonic()
    while True:
        state = collect(kube, name, namespace, nodes=False)
        if progress is not None:
            progress(state)
        done = outcome(state, until)
        waited = time.monotonic() - started
        if done is not None:
            return WaitResult(done, state, waited)
        if waited >= timeout:
            return WaitResult("Timeout", state, waited)
        time.sleep(min(poll, max(timeout - waited, 0.05)))
