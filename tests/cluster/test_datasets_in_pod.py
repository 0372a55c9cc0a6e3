"""spec.datasets in real pods: a populate Job fills the shared claim from SeaweedFS, trainers wait and read it.

On the session's `sandbox up --kubelet 2` sandbox (tests/cluster/real_pods.py) with the runtime image: a
SeaweedFS on this machine, listening on every address so pods reach it at their node's IP, holds a
shared dataset and a sharded corpus. `berth up` applies the rendered Job and StatefulSet as a user
would; nothing in the pods is faked.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..runtime.conftest import Seaweed, running_seaweed
from .real_pods import Cluster, spec, unique_ns, wait_for

pytestmark = pytest.mark.cluster

# Lists every dataset file with its SHA-256 as the trainer sees it, then tries to write the shared mount.
LISTER = r"""
import hashlib, os, sys, time
for root in ("/data/imagenet", "/ckpt/corpus"):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".berth-stage"]
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            print("file", path, hashlib.sha256(open(path, "rb").read()).hexdigest(), flush=True)
try:
    open("/data/imagenet/written-by-trainer", "w")
    print("shared writable", flush=True)
except OSError as err:
    print("shared read-only", err.errno, flush=True)
print("listed", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def seaweed_for_pods(tmp_path: Path) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path / "weed", bind="0.0.0.0") as server:
        yield server


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _terminated(status: dict[str, Any]) -> dict[str, Any]:
    message = status["state"].get("terminated", {}).get("message") or status["lastState"]["terminated"]["message"]
    report: dict[str, Any] = json.loads(message)
    return report


def test_populate_job_fills_the_shared_claim_once_and_each_pod_stages_its_shard(
    cluster: Cluster, up: Callable[[dict[str, Any]], str], seaweed_for_pods: Seaweed
) -> None:
    weed = seaweed_for_pods
    client = weed.client()
    client.create_bucket(Bucket="datasets")
    shared = {f"train/{i:02d}.rec": os.urandom(20_000 + i) for i in range(12)}
    shared["val/big.rec"] = os.urandom(3 << 20)
    corpus = {f"{i}.tok": os.urandom(10_000 + i) for i in range(5)}
    for prefix, files in (("imagenet", shared), ("corpus", corpus)):
        for name, data in files.items():
            client.put_object(Bucket="datasets", Key=f"{prefix}/{name}", Body=data)
    node = json.loads(cluster.kc("get", "node", "sandbox-kubelet-0", "-o", "json"))
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    endpoint = f"http://{address}:{weed.ports['s3']}"

    ns = unique_ns("datasets")
    cluster.kc("create", "namespace", ns)
    creds = [f"--from-literal={k}={v}" for k, v in weed.env.items() if k.endswith(("_KEY_ID", "_ACCESS_KEY"))]
    cluster.kc("-n", ns, "create", "secret", "generic", "s3-creds", *creds)
    source = {"secretName": "s3-creds", "endpoint": endpoint, "region": "us-east-1"}
    document = spec(
        "trainer",
        ns,
        cluster.image,
        command=["python3", "-c", LISTER],
        extra={
            "sharedVolumes": {
                "data": {"claimName": "imagenet", "mountPath": "/data", "size": "1Gi", "storageClass": "standard"}
            },
            "datasets": {
                "imagenet": {"source": "s3://datasets/imagenet", "into": "data", "path": "imagenet", **source},
                "corpus": {
                    "source": "s3://datasets/corpus",
                    "into": "ckpt",
                    "path": "corpus",
                    "shard": "perRank",
                    **source,
                },
            },
        },
    )
    try:
        up(document)  # returns once both trainers are Ready: after the Job finished and every init container ran
    except AssertionError as err:
        pods = cluster.kc("-n", ns, "get", "pods", "-o", "json", check=False)
        statuses = [
            (p["metadata"]["name"], p["status"].get("initContainerStatuses"), p["status"].get("containerStatuses"))
            for p in json.loads(pods or '{"items": []}')["items"]
        ]
        logs = cluster.kc("-n", ns, "logs", "-l", "app.kubernetes.io/component=dataset", "--tail=20", check=False)
        raise AssertionError(f"{err}\npods: {json.dumps(statuses)[:4000]}\npopulate log: {logs}") from None

    [job] = json.loads(cluster.kc("-n", ns, "get", "jobs", "-o", "json"))["items"]
    assert job["status"].get("succeeded") == 1, job["status"]
    [job_pod] = json.loads(
        cluster.kc("-n", ns, "get", "pods", "-l", f"job-name={job['metadata']['name']}", "-o", "json")
    )["items"]
    report = _terminated(job_pod["status"]["containerStatuses"][0])
    assert (report["files"], report["fetched"], report["bytesFetched"]) == (13, 13, sum(map(len, shared.values())))

    ordered = sorted(corpus)
    for rank in range(2):
        pod = f"trainer-{rank}"
        lines = wait_for(cluster.logs_when(ns, pod, lambda got: "listed" in got), 60, f"{pod} to list its data")
        seen = {line.split()[1]: line.split()[2] for line in lines if line.startswith("file ")}
        expected = {f"/data/imagenet/{k}": _sha(v) for k, v in shared.items()}
        expected |= {f"/ckpt/corpus/{k}": _sha(corpus[k]) for k in ordered[rank::2]}
        assert seen == expected, pod
        assert "shared read-only 30" in lines  # EROFS: the trainers' mount of the shared claim is read-only
        status = {s["name"]: s for s in cluster.pod(ns, pod)["status"]["initContainerStatuses"]}
        assert _terminated(status["stage-corpus"])["fetched"] == len(ordered[rank::2])
        assert status["wait-imagenet"]["state"]["terminated"]["exitCode"] == 0

    # berth status says where each dataset's staging stands, from the pod list it reads anyway.
    shown = cluster.berth("status", "trainer", "-n", ns, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    rows = {(d["dataset"], d["pod"]): d for d in json.loads(shown.stdout)["datasets"]}
    populate = rows[("imagenet", job_pod["metadata"]["name"])]
    assert (populate["how"], populate["state"]) == ("populate Job", "done"), populate
    mib = sum(map(len, shared.values())) / (1 << 20)
    assert populate["detail"].startswith(f"13 files (13 fetched, 0 up to date), {mib:.1f} MiB in "), populate
    for rank in range(2):
        own = rows[("corpus", f"trainer-{rank}")]
        assert (own["how"], own["state"]) == ("init (own volume)", "done"), own
        fetched = len(ordered[rank::2])
        assert own["detail"].startswith(f"{fetched} files ({fetched} fetched, 0 up to date)"), own
        assert rows[("imagenet", f"trainer-{rank}")]["state"] == "done"
    assert len(rows) == 5, rows
    text = cluster.berth("status", "trainer", "-n", ns)
    assert "populate Job" in text.stdout and "13 files (13 fetched" in text.stdout, text.stdout

    # A restarted pod finds its shard on its claim: nothing is fetched again.
    uid = cluster.pod(ns, "trainer-1")["metadata"]["uid"]
    cluster.kc("-n", ns, "delete", "pod", "trainer-1", "--wait=true", timeout=90)

    def restaged() -> dict[str, Any] | None:
        pod = cluster.pod(ns, "trainer-1")
        if pod["metadata"]["uid"] == uid:
            return None
        status = {s["name"]: s for s in pod["status"].get("initContainerStatuses", [])}
        done = status.get("stage-corpus", {}).get("state", {}).get("terminated")
        return _terminated(status["stage-corpus"]) if done else None

    again = wait_for(restaged, 90, "the new trainer-1's stage-corpus to finish")
    assert (again["fetched"], again["skipped"]) == (0, len(ordered[1::2]))
    # The Job ran once: still one pod, one completion.
    pods = json.loads(cluster.kc("-n", ns, "get", "pods", "-l", f"job-name={job['metadata']['name']}", "-o", "json"))
    assert len(pods["items"]) == 1
