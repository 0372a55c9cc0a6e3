"""Disaster recovery in real pods: a cluster archives a step, is deleted with its volumes, and comes back.

On the session's `sandbox up --kubelet 2` sandbox with the runtime image (tests/cluster/real_pods.py)
and a SeaweedFS on this machine that the pods reach at their node's address (as
test_datasets_in_pod.py does): `berth up` runs two ranks that save and archive steps 5 and 10;
`berth down --delete-volumes --yes` loses the cluster and its claims; `berth restore
--from-archive … --yes` recreates it, each pod's `seed-checkpoints` init container fills the
fresh claim, and the trainer finds step 10 on its volume before it restores. Before the loss,
`berth backup`'s flush request (runtime/flush.py) is answered by both trainers from their pods.
Nothing is faked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.runtime.archive import Archive, make_client
from berth.runtime.flush import flush_all
from berth.runtime.seed import agreed_step

from ..conftest import berth_process
from ..runtime.conftest import Seaweed
from .real_pods import Cluster, spec, unique_ns, wait_for
from .test_datasets_in_pod import seaweed_for_pods

pytestmark = pytest.mark.cluster
__all__ = ["seaweed_for_pods"]  # the fixture, shared with the datasets test

# Rank r's "model" is step + r everywhere. A fresh start saves (and archives) steps 5 and 10, then
# idles (a SIGTERM exits without another save, so the archive's newest step stays 10). A start that
# finds a step prints which steps its volume held before restore() ran.
TRAINER = r"""
import os, sys, time
import numpy as np
from berth.checkpoint import CheckpointManager
from berth.runtime import preempt
from berth.runtime.agree import alone
preempt.install()
rank = int(os.environ["RANK"])
os.environ["BERTH_FLUSH_POLL_S"] = "1"  # answer flush requests within a second (default 10)
with CheckpointManager(keep_last=None, agree=alone) as mgr:
    print("local steps", mgr.steps(), flush=True)
    step, state = mgr.restore()
    if step is None:
        for step in (5, 10):
            mgr.save(step, {"w": np.full(8, float(step + rank))}, blocking=True)
        assert mgr.wait_archived(60)
        print("archived 10", flush=True)
    else:
        assert (state["w"] == step + rank).all(), state
        print(f"resumed from step {step}", flush=True)
    while not preempt.wait(1):
        pass
"""


def _report(status: dict[str, Any]) -> dict[str, Any]:
    done = status["state"].get("terminated") or status["lastState"]["terminated"]
    report: dict[str, Any] = json.loads(done["message"])
    return report


def test_cluster_lost_with_its_volumes_comes_back_from_the_archive(
    cluster: Cluster,
    up: Callable[[dict[str, Any]], str],
    seaweed_for_pods: Seaweed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    weed = seaweed_for_pods
    weed.client().create_bucket(Bucket="ckpt")
    for key, value in weed.env.items():
        monkeypatch.setenv(key, value)
    url = "s3://ckpt/trainer"
    node = json.loads(cluster.kc("get", "node", "sandbox-kubelet-0", "-o", "json"))
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    ns = unique_ns("restore")
    cluster.kc("create", "namespace", ns)
    creds = [f"--from-literal={k}={v}" for k, v in weed.env.items() if k.endswith(("_KEY_ID", "_ACCESS_KEY"))]
    cluster.kc("-n", ns, "create", "secret", "generic", "ckpt-s3", *creds)
    archive = {"url": url, "secretName": "ckpt-s3", "endpoint": f"http://{address}:{weed.ports['s3']}"}
    command = ["berth", "run", "--dns-timeout", "120", "--", "python3", "-c", TRAINER]
    document = spec("trainer", ns, cluster.image, command=command, extra={"archive": archive})

    up(document)
    for rank in range(2):
        wait_for(cluster.logs_when(ns, f"trainer-{rank}", lambda got: "archived 10" in got), 60, "steps archived")
    archive_client = Archive(url, client=make_client())
    assert agreed_step(archive_client.shards(), 2) == 10
    # `berth backup`'s flush, asked through the archive: each trainer's manager answers from its pod.
    flushed = flush_all(url, 2, timeout_s=30)
    assert [(f.rank, f.step, f.archived) for f in flushed] == [(0, 10, True), (1, 10, True)], flushed

    # The cluster is lost with its volumes.
    down = cluster.berth("down", "trainer", "-n", ns, "--delete-volumes", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    wait_for(lambda: not json.loads(cluster.kc("-n", ns, "get", "pvc", "-o", "json"))["items"], 60, "claims gone")

    path = tmp_path / "trainer.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    restored = berth_process(  # this process's AWS_* env: the CLI checks the archive from here
        *("restore", "trainer", "--from-archive", url, "-f", str(path), "--yes", "--timeout", "120"),
        env={"KUBECONFIG": str(cluster.kubeconfig)},
        timeout=180,
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "resuming from step 10" in restored.stdout, restored.stdout
    for rank in range(2):
        pod = f"trainer-{rank}"
        assert f"{pod}: seeded step 10" in restored.stdout, restored.stdout
        lines = wait_for(cluster.logs_when(ns, pod, lambda got: any("resumed" in x for x in got)), 60, "resume")
        assert "local steps [10]" in lines and "resumed from step 10" in lines, lines
        status = {s["name"]: s for s in cluster.pod(ns, pod)["status"]["initContainerStatuses"]}
        report = _report(status["seed-checkpoints"])
        assert (report["rank"], report["step"], report["action"]) == (rank, 10, "seeded")
        assert report["bytesFetched"] == archive_client.manifest(10, rank).nbytes > 0

    # A pod restart runs the seed again: the step is there, nothing is fetched.
    uid = cluster.pod(ns, "trainer-1")["metadata"]["uid"]
    cluster.kc("-n", ns, "delete", "pod", "trainer-1", "--wait=true", timeout=90)

    def reseeded() -> dict[str, Any] | None:
        pod = cluster.pod(ns, "trainer-1")
        if pod["metadata"]["uid"] == uid:
            return None
        status = {s["name"]: s for s in pod["status"].get("initContainerStatuses", [])}
        done = status.get("seed-checkpoints", {}).get("state", {}).get("terminated")
        return _report(status["seed-checkpoints"]) if done else None

    again = wait_for(reseeded, 90, "the new trainer-1's seed to finish")
    assert (again["action"], again["bytesFetched"]) == ("present", 0)
    print(f"[in-pod] restore from archive: {time.monotonic() - started:.1f} s")
