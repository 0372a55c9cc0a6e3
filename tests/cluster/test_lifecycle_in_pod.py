"""spec.lifecycle in real pods: `sandbox up --kubelet 2`, the runtime image (berth from this checkout).

The rendered command (preamble, then `berth run -- python3 -c <trainer>`) runs as the pods'
entrypoint; completion and the gang's state are read from each pod's claim (`.berth/run.json` on
its local PV). The sandbox has no kube-proxy, so the pods cannot reach the API server through its
Service: the supervisors say so once per call and keep training (the API half is in
test_lifecycle_api.py, against the same API server from local processes).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from .real_pods import Cluster, claim_dir, spec, unique_ns, wait_for

pytestmark = pytest.mark.cluster

TRAINER = r"""
import os, sys
from pathlib import Path
import numpy as np
from berth.checkpoint import CheckpointManager
from berth.runtime import gang, preempt
preempt.install()
rank, gen = int(os.environ["RANK"]), os.environ.get("BERTH_GENERATION")
steps, pace = int(os.environ["STEPS"]), float(os.environ["STEP_SECONDS"])
fail = os.environ.get("FAIL_AT", "")
marker = Path(os.environ["BERTH_CHECKPOINT_DIR"]).parent / "failed-once"
mgr = CheckpointManager(keep_last=5, agree=gang.agreement(timeout=120))
step, state = mgr.restore()
print(f"generation {gen} rank {rank} resumed from {step}", flush=True)
for s in range((step or 0) + 1, steps + 1):
    if preempt.wait(pace):
        mgr.wait()
        sys.exit(143)
    if fail and rank == int(fail.split(":")[0]) and s == int(fail.split(":")[1]) and (
        os.environ.get("FAIL_ALWAYS") or not marker.exists()
    ):
        marker.touch()
        print(f"boom at step {s}", flush=True)
        sys.exit(1)
    mgr.save(s, {"w": np.full(8, float(s))}, blocking=True)
mgr.close()
print(f"rank {rank} finished {steps} steps", flush=True)
"""


def _doc(ns: str, image: str, env: dict[str, str]) -> dict[str, Any]:
    return spec(
        "run",
        ns,
        image,
        replicas=3,
        command=["python3", "-c", TRAINER],
        extra={
            "env": {"STEPS": "20", "STEP_SECONDS": "0.2", **env},
            "lifecycle": {"backoffSeconds": 0, "stopGraceSeconds": 5},
        },
    )


def _states(cluster: Cluster, ns: str) -> Callable[[], list[dict[str, Any]] | None]:
    def read() -> list[dict[str, Any]] | None:
        out = []
        for i in range(3):
            path = claim_dir(cluster, ns, f"ckpt-run-{i}") / ".berth" / "run.json"
            try:
                out.append(json.loads(path.read_text()))
            except FileNotFoundError:  # the supervisor has not started yet
                return None
        return out if out[0].get("gang", {}).get("phase") == "Succeeded" and all(s["completed"] for s in out) else None

    return read


def _resumes(lines: list[str]) -> list[tuple[int, int | None]]:
    found = [re.fullmatch(r"generation (\d+) rank \d+ resumed from (\w+)", line) for line in lines]
    return [(int(m[1]), None if m[2] == "None" else int(m[2])) for m in found if m]


def test_three_ranks_complete_once_and_idle(cluster: Cluster, up: Callable[[dict[str, Any]], str]) -> None:
    ns = unique_ns("lc")
    up(_doc(ns, cluster.image, {}))
    states = wait_for(_states(cluster, ns), 180, "every rank to complete", cluster.tail(ns, "run-0"))
    assert [s["starts"] for s in states] == [1, 1, 1] and [s["exitCode"] for s in states] == [0, 0, 0]
    time.sleep(5)  # a finished rank idles: its container neither exits nor restarts
    for i in range(3):
        pod = cluster.pod(ns, f"run-{i}")
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
        assert "running" in pod["status"]["containerStatuses"][0]["state"]
        logs = cluster.logs(ns, f"run-{i}")
        assert f"rank {i} finished 20 steps" in logs and "berth: no berth in this image" not in "\n".join(logs)
        # No API from these pods (no kube-proxy): said at most once per call, never per attempt.
        assert sum("cannot patch pods/" in line for line in logs) <= 1, logs[-8:]
    assert any("every rank completed: the run Succeeded" in line for line in cluster.logs(ns, "run-0"))


def test_a_failure_restarts_every_rank_from_the_agreed_step(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("lcf")
    up(_doc(ns, cluster.image, {"FAIL_AT": "1:7"}))
    states = wait_for(_states(cluster, ns), 240, "the run to succeed after a gang restart", cluster.tail(ns, "run-0"))
    gang = states[0]["gang"]
    assert (gang["restarts"], gang["failures"], gang["generation"]) == (1, 1, 2), gang
    assert [s["starts"] for s in states] == [2, 2, 2]
    second = [r for i in range(3) for r in _resumes(cluster.logs(ns, f"run-{i}")) if r[0] == 2]
    assert len(second) == 3 and len({step for _, step in second}) == 1 and second[0][1], second
    assert any("boom at step 7" in line for line in cluster.logs(ns, "run-1"))
    assert all(
        p["restartCount"] == 0 for i in range(3) for p in cluster.pod(ns, f"run-{i}")["status"]["containerStatuses"]
    )


def test_a_deleted_pod_saves_within_its_grace_and_the_gang_resumes_from_a_step_all_have(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("lcd")
    up(_doc(ns, cluster.image, {"STEPS": "60"}))
    wait_for(
        cluster.logs_when(ns, "run-1", lambda got: any("resumed from None" in line for line in got)),
        90,
        "run-1's trainer to start",
        cluster.tail(ns, "run-1"),
    )
    time.sleep(3)
    started = time.monotonic()
    cluster.kc("-n", ns, "delete", "pod", "run-1", "--wait=true", timeout=90)
    gone_after = time.monotonic() - started
    assert gone_after < 30, f"run-1 took {gone_after:.1f} s to go: its grace period is 30 s"
    host = claim_dir(cluster, ns, "ckpt-run-1") / "checkpoints"
    saved = max(int(p.name.removeprefix("step-")) for p in host.glob("step-*"))
    assert saved > 0
    states = wait_for(
        _states(cluster, ns), 240, "the run to succeed after the pod came back", cluster.tail(ns, "run-0")
    )
    gang = states[0]["gang"]
    assert gang["restarts"] >= 1 and gang["failures"] == 0, gang  # a lost peer is no failure
    # The deleted pod's supervisor measured its stop; it stays on the claim for the next pod (doctor).
    assert 0 <= states[1]["lastStopSeconds"] <= gone_after, states[1]
    assert states[0]["lastStopSeconds"] is None and states[2]["lastStopSeconds"] is None
    later = [r for i in range(3) for r in _resumes(cluster.logs(ns, f"run-{i}")) if r[0] >= 2]
    steps = {step for _, step in later}
    assert len(steps) == 1 and (resumed := steps.pop()) is not None and 0 < resumed <= saved, later
