"""The run phase in `berth status` and the outcome of `berth wait`: pure rules over fetched objects."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

import pytest
from lightkube.resources.core_v1 import Pod

from berth.errors import UsageError
from berth.kube.lifecycle import EXIT_CODES, outcome
from berth.kube.status import Fetched, classify

NOW = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
SELECTOR = {"app.kubernetes.io/instance": "t"}


def _sts(replicas: int = 2, run: dict[str, Any] | None = None, lifecycle: bool = True) -> dict[str, Any]:
    env = [{"name": "BERTH_LIFECYCLE", "value": "scaleToZero"}] if lifecycle else []
    md: dict[str, Any] = {"name": "t", "namespace": "ns", "generation": 1}
    if run is not None:
        md["annotations"] = {"berth.dev/run": json.dumps(run)}
    return {
        "metadata": md,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": SELECTOR},
            "template": {"spec": {"containers": [{"name": "trainer", "env": env}]}},
        },
        "status": {
            "observedGeneration": 1,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "updateRevision": "t-1",
            "currentRevision": "t-1",
        },
    }


def _pod(i: int, rank: dict[str, Any] | None = None, phase: str = "Running") -> Pod:
    md: dict[str, Any] = {
        "name": f"t-{i}",
        "namespace": "ns",
        "labels": {**SELECTOR, "apps.kubernetes.io/pod-index": str(i), "controller-revision-hash": "t-1"},
    }
    if rank is not None:
        md["annotations"] = {"berth.dev/rank": json.dumps(rank)}
    return cast(
        Pod,
        Pod.from_dict(
            {"metadata": md, "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}}
        ),
    )


def _state(sts: dict[str, Any], pods: list[Pod]) -> Any:
    return classify("t", "ns", Fetched(sts, pods, [], {}), now=NOW)


def test_no_lifecycle_has_no_run_phase() -> None:
    state = _state(_sts(lifecycle=False), [_pod(0), _pod(1)])
    assert state.run is None and state.to_json()["run"] is None
    with pytest.raises(UsageError, match=r"no spec\.lifecycle"):
        outcome(state, "complete")
    assert outcome(state, "ready") == "Ready"


@pytest.mark.parametrize(
    ("run", "pods", "phase"),
    [
        (None, 0, "Pending"),
        (None, 2, "Starting"),
        ({"phase": "Running", "revision": "t-1"}, 2, "Running"),
        ({"phase": "Running", "revision": "t-1"}, 1, "Pending"),
        ({"phase": "Restarting", "restarts": 1}, 1, "Restarting"),
        ({"phase": "Succeeded", "revision": "t-1"}, 0, "Succeeded"),
        ({"phase": "Succeeded", "revision": "t-0"}, 2, "Starting"),  # written for another template: stale
        ({"phase": "Failed"}, 0, "Failed"),
        ({"phase": "bogus"}, 2, "Starting"),
    ],
)
def test_run_phase(run: dict[str, Any] | None, pods: int, phase: str) -> None:
    state = _state(_sts(run=run), [_pod(i) for i in range(pods)])
    assert state.run is not None and state.run.phase == phase


def test_failed_run_and_ranks_in_json() -> None:
    run = {
        "phase": "Failed",
        "restarts": 3,
        "failures": 4,
        "generation": 4,
        "reason": "rank 1 exited 1: boom (after 3 restarts)",
        "failedRank": 1,
        "exitCode": 1,
        "lastLine": "boom",
    }
    ranks = [
        {"phase": "Failed", "restarts": 3, "step": 6, "exitCode": None},
        {"phase": "Failed", "restarts": 3, "step": 6, "exitCode": 1, "lastLine": "boom", "lastStopSeconds": 12.5},
    ]
    state = _state(_sts(run=run), [_pod(i, ranks[i]) for i in range(2)])
    out = state.to_json()
    assert out["run"] == {k: run[k] for k in run}
    assert out["pods"][1]["run"] == ranks[1]
    assert out["pods"][0]["run"]["lastStopSeconds"] is None  # never stopped by SIGTERM
    assert outcome(state, "complete") == "Failed" and outcome(state, "ready") == "Failed"
    assert EXIT_CODES["Failed"] == 1 and EXIT_CODES["Timeout"] == 2 and EXIT_CODES["Succeeded"] == 0


def test_succeeded_after_scale_to_zero() -> None:
    state = _state(_sts(replicas=0, run={"phase": "Succeeded", "revision": "t-1"}), [])
    assert state.run is not None and state.run.phase == "Succeeded"
    assert outcome(state, "complete") == "Succeeded"
    assert outcome(state, "ready") is None  # a finished run is not "ready": wait --for complete


def test_garbage_annotations_are_ignored() -> None:
    sts = _sts()
    sts["metadata"]["annotations"] = {"berth.dev/run": "{not json"}
    pod = _pod(0)
    assert pod.metadata is not None
    pod.metadata.annotations = {"berth.dev/rank": "[1, 2]"}
    state = _state(sts, [pod, _pod(1)])
    assert state.run is not None and state.run.phase == "Starting" and state.pods[0].run is None
