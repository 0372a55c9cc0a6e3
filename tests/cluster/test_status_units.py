"""`status` = fetch + a pure classifier, and `wait` reporting to a callback: both without a cluster.

The objects are what the API server returns (built with lightkube's own models from plain
dicts), so the classification rules are pinned here in milliseconds; the tests against the
real control plane check that fetching feeds them the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

import berth.kube.wait as wait_module
from berth.errors import BerthError
from berth.kube.status import ClusterState, Fetched, classify
from berth.kube.wait import Readiness, wait_ready

NOW = dt.datetime(2025, 1, 2, 12, 0, tzinfo=dt.UTC)
SELECTOR = {"app.kubernetes.io/instance": "t"}


def _sts(replicas: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "ns", "generation": 3},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": SELECTOR},
            "volumeClaimTemplates": [{"metadata": {"name": "ckpt"}}],
            "template": {"spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "dataset"}}]}},
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain", "whenDeleted": "Retain"},
        },
        "status": {
            "observedGeneration": 3,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "currentRevision": "t-1",
            "updateRevision": "t-1",
            **status,
        },
    }


def _pod(ordinal: int, *, ready: bool = True, labels: dict[str, str] | None = None, **status: Any) -> Pod:
    name = f"t-{ordinal}"
    return Pod.from_dict(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "labels": {**SELECTOR, "controller-revision-hash": "t-1", **(labels or {})},
            },
            "spec": {
                "nodeName": f"node-{ordinal}",
                "containers": [{"name": "trainer"}],
                "volumes": [
                    {"name": "ckpt", "persistentVolumeClaim": {"claimName": f"ckpt-{name}"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "dataset"}},
                ],
            },
            "status": {
                "phase": "Running" if ready else "Pending",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                **status,
            },
        }
    )


def _claim(name: str, *, phase: str = "Bound", annotations: dict[str, str] | None = None) -> PersistentVolumeClaim:
    return PersistentVolumeClaim.from_dict(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "creationTimestamp": "2025-01-01T12:00:00Z",
                "annotations": annotations or {},
            },
            "spec": {
                "storageClassName": "standard",
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeName": f"pv-{name}" if phase == "Bound" else None,
            },
            "status": {"phase": phase, "capacity": {"storage": "1Gi"} if phase == "Bound" else None},
        }
    )


def test_classify_pods_claims_orphans_and_shared_volumes() -> None:
    pending = {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu",
            }
        ]
    }
    fetched = Fetched(
        statefulset=_sts(replicas=2, readyReplicas=1),
        pods=[_pod(1, ready=False, **pending), _pod(0), _pod(7, labels={"app.kubernetes.io/instance": "other"})],
        claims=[
            _claim("ckpt-t-0"),
            _claim("ckpt-t-1", phase="Pending"),
            _claim("ckpt-t-3"),
            _claim("dataset", annotations={"berth.dev/protect": "true"}),
            _claim("unrelated"),
        ],
        zones={"node-0": "zone-a", "node-1": "zone-b"},
    )
    state = classify("t", "ns", fetched, now=NOW)
    assert [(p.name, p.ordinal, p.ready, p.zone) for p in state.pods] == [
        ("t-0", 0, True, "zone-a"),
        ("t-1", 1, False, "zone-b"),
    ]  # sorted; the other instance's pod left out
    assert state.pods[1].reason == "PodScheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    assert [(c.name, c.ordinal, c.orphaned) for c in state.claims] == [
        ("ckpt-t-0", 0, False),
        ("ckpt-t-1", 1, False),
        ("ckpt-t-3", 3, True),
    ]
    assert [c.name for c in state.orphans] == ["ckpt-t-3"]
    assert [(c.name, c.protected, c.mounted_by) for c in state.shared] == [("dataset", True, ["t-0", "t-1", "t-7"])]
    assert state.claims[0].age_s == 86400.0  # from `now`, not the wall clock
    assert state.rollout == "waiting: 1/2 ready"


def test_classify_rollout_phases() -> None:
    def rollout(sts: dict[str, Any] | None) -> str:
        return classify("t", "ns", Fetched(sts, [], [], {}), now=NOW).rollout

    assert rollout(None) == "absent"
    assert rollout(_sts(observedGeneration=2)) == "pending: the controller has not seen the latest change"
    assert rollout(_sts(updateRevision="t-2", updatedReplicas=1)) == "rolling out: 1/2 updated"
    assert rollout(_sts()) == "complete"


def test_classify_without_a_statefulset_keeps_claims_by_name() -> None:
    """After `down` (StatefulSet gone) claims are still recognised by name, and all count as orphaned."""
    state = classify("t", "ns", Fetched(None, [], [_claim("ckpt-t-0")], {}), now=NOW)
    assert not state.exists and state.replicas == 0
    assert [(c.template, c.ordinal, c.orphaned) for c in state.claims] == [("ckpt", 0, True)]


def test_status_json_keys_are_camel_case() -> None:
    fetched = Fetched(_sts(), [_pod(0), _pod(1)], [_claim("ckpt-t-0"), _claim("dataset")], {}, ["a note"])
    doc = classify("t", "ns", fetched, now=NOW).to_json()

    def keys(value: Any) -> set[str]:
        if isinstance(value, dict):
            return {k for k in value if not k.startswith("app.kubernetes.io")} | {
                k for v in value.values() for k in keys(v)
            }
        if isinstance(value, list):
            return {k for v in value for k in keys(v)}
        return set()

    assert not [k for k in keys(doc) if "_" in k]
    assert {"readyReplicas", "updateRevision", "generationObserved", "storageClass", "mountedBy", "ageSeconds"} <= keys(
        doc
    )
    assert "statefulset" not in doc and doc["rollout"] == "complete"


def test_wait_reports_every_snapshot_to_the_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library draws nothing: each poll goes to `progress`, the last (ready) one included."""
    snapshots = [
        classify(
            "t",
            "ns",
            Fetched(_sts(replicas=1, readyReplicas=0), [_pod(0, ready=False)], [_claim("ckpt-t-0")], {}),
            now=NOW,
        ),
        classify("t", "ns", Fetched(_sts(replicas=1), [_pod(0)], [_claim("ckpt-t-0")], {}), now=NOW),
    ]
    monkeypatch.setattr(wait_module, "collect", lambda *a, **k: snapshots.pop(0))
    monkeypatch.setattr(wait_module, "POLL_S", 0.0)
    seen: list[tuple[ClusterState, Readiness]] = []
    state = wait_ready(None, "t", "ns", timeout_s=10, progress=lambda s, r: seen.append((s, r)))  # type: ignore[arg-type]
    assert [r.done for _, r in seen] == [False, True]
    assert seen[-1][0] is state
    assert seen[0][1].summary.startswith("t: 0/1 pods ready")


def test_wait_timeout_names_the_blockers(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = classify(
        "t",
        "ns",
        Fetched(_sts(replicas=1, readyReplicas=0), [_pod(0, ready=False)], [_claim("ckpt-t-0", phase="Pending")], {}),
        now=NOW,
    )
    monkeypatch.setattr(wait_module, "collect", lambda *a, **k: stuck)
    with pytest.raises(BerthError, match=r"t not ready after 0s: .*claim ckpt-t-0: Pending"):
        wait_ready(None, "t", "ns", timeout_s=0)  # type: ignore[arg-type]


def test_wait_module_does_not_import_rich() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(wait_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not [m for m in imported if m and m.split(".")[0] == "rich"]


def _stager(name: str, labels: dict[str, str], init: list[str], **status: Any) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "ns", "labels": labels},
            "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": n} for n in init]},
            "status": status,
        }
    )


def _cs(name: str, state: dict[str, Any], restarts: int = 0, last: dict[str, Any] | None = None) -> dict[str, Any]:
    """A container status as the kubelet reports it (lightkube requires image, ready, restartCount)."""
    out = {"name": name, "image": "i", "imageID": "", "ready": False, "restartCount": restarts, "state": state}
    return {**out, "lastState": {"terminated": last}} if last else out


def test_datasets_staging_from_the_same_pod_list() -> None:
    """Populate pods (component dataset, job-name) and the trainers' stage-/wait- init containers."""
    report = '{"files": 13, "fetched": 11, "skipped": 2, "bytesFetched": 3407872, "seconds": 1.5}'
    job_labels = {**SELECTOR, "app.kubernetes.io/component": "dataset", "job-name": "t-imagenet-abc123"}
    done = {"terminated": {"exitCode": 0, "message": report}}
    populate = _stager(
        "t-imagenet-abc123-x7", job_labels, [], phase="Succeeded", containerStatuses=[_cs("stage", done)]
    )
    bucket = {"exitCode": 1, "message": "staging...\nerror: s3://d/c: NoSuchBucket\n"}
    retrying = _stager(
        "t-corpus2-def456-y8",
        {**job_labels, "job-name": "t-corpus2-def456"},
        [],
        phase="Running",
        containerStatuses=[_cs("stage", {"running": {}}, 2, bucket)],
    )
    trainer = {**SELECTOR, "controller-revision-hash": "t-1"}
    staging = _stager(
        "t-0",
        trainer,
        ["wait-imagenet", "stage-corpus", "other"],
        phase="Pending",
        initContainerStatuses=[
            _cs("wait-imagenet", {"terminated": {"exitCode": 0}}),
            _cs("stage-corpus", {"running": {}}),
        ],
    )
    backoff = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}
    crashing = _stager(
        "t-1",
        trainer,
        ["wait-imagenet", "stage-corpus"],
        phase="Pending",
        initContainerStatuses=[
            _cs("wait-imagenet", {"running": {}}),
            _cs("stage-corpus", backoff, 3, {"exitCode": 2, "message": "error: volume full\n"}),
        ],
    )
    stranger = _pod(7, labels={"app.kubernetes.io/instance": "other"})
    pods = [populate, retrying, staging, crashing, stranger]
    state = classify("t", "ns", Fetched(statefulset=_sts(), pods=pods, claims=[], zones={}, notes=[]), now=NOW)
    got = [(d.dataset, d.how, d.pod, d.state, d.restarts) for d in state.datasets]
    assert got == [
        ("corpus", "init (own volume)", "t-0", "running", 0),
        ("corpus", "init (own volume)", "t-1", "failed", 3),
        ("corpus2", "populate Job", "t-corpus2-def456-y8", "running", 2),
        ("imagenet", "populate Job", "t-imagenet-abc123-x7", "done", 0),
        ("imagenet", "waits for the populate Job", "t-0", "done", 0),
        ("imagenet", "waits for the populate Job", "t-1", "waiting", 0),
    ]
    assert [d.detail for d in state.datasets] == [
        "",
        "CrashLoopBackOff: back-off 40s; last run: error: volume full",
        "restarted after: error: s3://d/c: NoSuchBucket",
        "13 files (11 fetched, 2 up to date), 3.2 MiB in 1.5 s",
        "ready",
        "",
    ]
    assert state.to_json()["datasets"][3]["detail"].startswith("13 files")
    # A cluster without datasets: no rows; another cluster's populate pods never count.
    foreign = _stager("u-x-abc123-z", {**job_labels, "job-name": "u-x-abc123"}, [])
    other = Fetched(statefulset=_sts(), pods=[_pod(0), foreign], claims=[], zones={}, notes=[])
    assert classify("t", "ns", other, now=NOW).datasets == []


def test_a_pod_in_its_init_containers_says_which_one() -> None:
    """Not the main container's ``PodInitializing``: the init container that holds the pod up."""
    init = ["wait-imagenet", "stage-corpus"]
    waiting = {"waiting": {"reason": "PodInitializing"}}
    main = [_cs("trainer", waiting)]

    def reason(*statuses: dict[str, Any]) -> str | None:
        pod = _stager("t-0", SELECTOR, init, phase="Pending", initContainerStatuses=list(statuses))
        pod.status.containerStatuses = Pod.from_dict({"status": {"containerStatuses": main}}).status.containerStatuses
        return classify("t", "ns", Fetched(_sts(), [pod], [], {}, []), now=NOW).pods[0].reason

    ok = {"terminated": {"exitCode": 0}}
    assert reason(_cs(init[0], {"running": {}}), _cs(init[1], waiting)) == "init container wait-imagenet running"
    assert reason(_cs(init[0], ok), _cs(init[1], {"running": {}})) == "init container stage-corpus running"
    backoff = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert (
        reason(_cs(init[0], ok), _cs(init[1], backoff)) == "init container stage-corpus: CrashLoopBackOff: back-off 10s"
    )
    assert reason(_cs(init[0], {"terminated": {"exitCode": 3}})) == "init container wait-imagenet failed (exit 3)"
    assert reason(_cs(init[0], ok), _cs(init[1], ok)) == "PodInitializing"  # all done: the main container's word
