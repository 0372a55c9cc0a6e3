"""berth's in-pod half in real pods: `berth up` on the session's `sandbox up --kubelet 2` sandbox.

The sandbox and the runtime image are the ``cluster`` fixture (tests/cluster/real_pods.py, shared by every
in-pod test module); each test applies its own spec with `berth up` in its own namespace, as a user would,
and removes it with `berth down --delete-volumes --yes`.

The trainer (tests/cluster/data/in_pod_trainer.py) runs as `berth run -- python3 -c <script>`: its
lines say its rank, world size, ids, the volume's owner and mode, every committed step, the step it
resumed from and the step its SIGTERM save committed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from .real_pods import (
    BERTH,
    FS_GROUP,
    KUBELET_NODES,
    TRAIN,
    Cluster,
    claim_dir,
    committed,
    spec,
    steps,
    unique_ns,
    wait_for,
)

pytestmark = pytest.mark.cluster


# --- the guide's TensorFlow cluster ------------------------------------------------------------

TF_PROBE = r"""
import json, os, socket, time
tf = json.loads(os.environ["TF_CONFIG"])
print("task", tf["task"]["type"], tf["task"]["index"], flush=True)
print("workers", " ".join(tf["cluster"]["worker"]), flush=True)
for name in ("POD_NAME", "POD_INDEX", "BERTH_REPLICAS", "BERTH_SERVICE", "BERTH_PORT"):
    print(f"env {name}={os.environ[name]}", flush=True)
for peer in tf["cluster"]["worker"]:
    host, deadline = peer.rsplit(":", 1)[0], time.monotonic() + 120
    while True:
        try:
            print("resolved", host, socket.gethostbyname(host), flush=True)
            break
        except OSError as err:
            if time.monotonic() > deadline:
                print("unresolved", host, err, flush=True)
                break
            time.sleep(0.5)
print("peers done", flush=True)
time.sleep(3600)
"""


def test_tensorflow_cluster_each_pod_its_own_task_index_and_every_peer_resolves(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    """examples/seed-tensorflow.yaml's cluster (name, Service, port, 3 replicas, two claims, PDB) on real nodes."""
    ns = unique_ns("tf")
    document = spec(
        "ml-training",
        ns,
        cluster.image,
        framework="tensorflow",
        replicas=3,
        command=["python3", "-c", TF_PROBE],  # the rendered shell preamble computes TF_CONFIG
        extra={
            "port": 2222,
            "serviceName": "tensorflow-training",
            "volumes": {
                "model-storage": {"mountPath": "/mnt/models", "size": "1Gi", "storageClass": "standard"},
                "dataset-storage": {"mountPath": "/mnt/datasets", "size": "1Gi", "storageClass": "standard"},
            },
            "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
            "disruption": {"minAvailable": 2},
        },
    )
    up(document)
    domain = f"tensorflow-training.{ns}.svc.cluster.local"
    workers = [f"ml-training-{i}.{domain}:2222" for i in range(3)]
    ips = {}
    for i in range(3):
        pod = cluster.pod(ns, f"ml-training-{i}")
        assert pod["spec"]["nodeName"] in KUBELET_NODES
        ips[f"ml-training-{i}.{domain}"] = pod["status"]["podIP"]
    assert len(set(ips.values())) == 3
    for i in range(3):
        lines = wait_for(
            cluster.logs_when(ns, f"ml-training-{i}", lambda got: "peers done" in got),
            150,
            f"ml-training-{i} to resolve its peers",
            cluster.tail(ns, f"ml-training-{i}"),
        )
        assert lines[:7] == [
            f"task worker {i}",
            f"workers {' '.join(workers)}",
            f"env POD_NAME=ml-training-{i}",
            f"env POD_INDEX={i}",
            "env BERTH_REPLICAS=3",
            "env BERTH_SERVICE=tensorflow-training",
            "env BERTH_PORT=2222",
        ]
        assert lines[7:] == [f"resolved {host} {ip}" for host, ip in ips.items()] + ["peers done"]


# --- PyTorch + berth run: restart on the same claim, SIGTERM save, fsGroup --------------------------


def test_pytorch_pod_restarts_on_its_claim_and_resumes_after_a_sigterm_save_owned_by_fsgroup(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("pt")
    up(spec("trainer", ns, cluster.image, command=TRAIN, extra={"disruption": {"maxUnavailable": 1}}))
    master = f"trainer-0.trainer.{ns}.svc.cluster.local:29500"
    for i in (0, 1):
        lines = wait_for(
            cluster.logs_when(ns, f"trainer-{i}", lambda got: len(committed(got)) >= 2),
            90,
            f"trainer-{i} to commit two steps",
            cluster.tail(ns, f"trainer-{i}"),
        )
        assert lines[:4] == [
            f"rank {i} world 2 master {master}",
            f"ids uid=1000 gid=1000 groups=1000,{FS_GROUP}",
            f"volume /ckpt owner=0:{FS_GROUP} mode=2775",  # fsGroup applied: group, setgid, g+rwx
            "starting at step 0",
        ]
        assert committed(lines)[:2] == [5, 10]
    before = cluster.pod(ns, "trainer-1")
    claim = "ckpt-trainer-1"
    assert [
        v["persistentVolumeClaim"]["claimName"] for v in before["spec"]["volumes"] if "persistentVolumeClaim" in v
    ] == [claim]
    host = claim_dir(cluster, ns, claim)
    pv_before = json.loads(cluster.kc("-n", ns, "get", "pvc", claim, "-o", "json"))["spec"]["volumeName"]
    assert (host.stat().st_uid, host.stat().st_gid, host.stat().st_mode & 0o7777) == (0, FS_GROUP, 0o2775)

    follower = cluster.follow(ns, "trainer-1")
    time.sleep(1.0)  # let `logs -f` attach before the container goes
    started = time.monotonic()
    cluster.kc("-n", ns, "delete", "pod", "trainer-1", "--wait=true", timeout=90)
    deleted_after = time.monotonic() - started
    old_lines = follower.communicate(timeout=30)[0].splitlines()
    final = [int(m.group(1)) for line in old_lines if (m := re.fullmatch(r"SIGTERM: committed step (\d+)", line))]
    assert len(final) == 1, old_lines[-5:]
    last = final[0]
    assert last >= max(committed(old_lines))
    assert deleted_after < 30, f"the pod took {deleted_after:.1f} s to go: its grace period is 30 s"
    print(f"[in-pod] delete trainer-1: gone in {deleted_after:.1f} s, SIGTERM save of step {last}", file=sys.stderr)
    on_claim = steps(host / "checkpoints")
    assert on_claim[-1] == last  # the SIGTERM save is the newest step on the claim
    step_dir = host / "checkpoints" / f"step-{last:012d}"
    assert (step_dir.stat().st_uid, step_dir.stat().st_gid) == (1000, FS_GROUP)  # written by the non-root user
    verify = subprocess.run(
        [*BERTH, "ckpt", "verify", str(host / "checkpoints")], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Back on the same claim (same PV), resuming from exactly that step.
    def resumed() -> list[str] | None:
        pod = cluster.pod(ns, "trainer-1")
        if pod["metadata"]["uid"] == before["metadata"]["uid"]:
            return None
        got = cluster.logs(ns, "trainer-1")
        return got if len(got) >= 4 else None

    lines = wait_for(resumed, 90, "trainer-1 to come back", cluster.tail(ns, "trainer-1"))
    again = cluster.pod(ns, "trainer-1")
    assert again["spec"]["nodeName"] == before["spec"]["nodeName"]  # the local PV's node affinity
    assert json.loads(cluster.kc("-n", ns, "get", "pvc", claim, "-o", "json"))["spec"]["volumeName"] == pv_before
    assert lines[:4] == [
        f"rank 1 world 2 master {master}",
        f"ids uid=1000 gid=1000 groups=1000,{FS_GROUP}",
        f"volume /ckpt owner=0:{FS_GROUP} mode=2775",
        f"resumed from step {last}",
    ]
    status = json.loads(cluster.berth("status", "trainer", "-n", ns, "-o", "json").stdout)
    assert [(p["name"], p["phase"], p["claims"]) for p in status["pods"]] == [
        ("trainer-0", "Running", ["ckpt-trainer-0"]),
        ("trainer-1", "Running", ["ckpt-trainer-1"]),
    ]


# --- scale 2 → 3, the PDB against the Eviction API ---------------------------------------------------


def test_scale_two_to_three_new_pod_joins_with_world_three_and_pdb_refuses_an_eviction(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Pod
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    ns = unique_ns("scale")
    up(spec("trainer", ns, cluster.image, command=TRAIN, extra={"disruption": {"maxUnavailable": 1}}))
    for rank in (0, 1):  # both old ranks must have a step to resume from when the scale restarts them
        wait_for(
            lambda rank=rank: committed(cluster.logs(ns, f"trainer-{rank}")),
            90,
            f"trainer-{rank} to commit a step",
            cluster.tail(ns, f"trainer-{rank}"),
        )
    started = time.monotonic()
    done = cluster.berth("scale", "trainer", "3", "-n", ns, "--wait", "--timeout", "180")
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"[in-pod] berth scale 2 -> 3: {time.monotonic() - started:.1f} s", file=sys.stderr)
    master = f"trainer-0.trainer.{ns}.svc.cluster.local:29500"
    for i in range(3):
        lines = wait_for(
            cluster.logs_when(ns, f"trainer-{i}", lambda got: bool(committed(got))),
            90,
            f"trainer-{i} to commit a step at world size 3",
            cluster.tail(ns, f"trainer-{i}"),
        )
        assert lines[0] == f"rank {i} world 3 master {master}"
        # The old ranks restarted (the world size is in the template) and resumed; the new one starts.
        assert lines[3] == "starting at step 0" if i == 2 else lines[3].startswith("resumed from step ")
    status = json.loads(cluster.berth("status", "trainer", "-n", ns, "-o", "json").stdout)
    assert (status["replicas"], status["readyReplicas"], status["rollout"]) == (3, 3, "complete")

    def budget() -> Any:
        pdb = cluster.client.get(PodDisruptionBudget, "trainer-pdb", namespace=ns)
        st = pdb.status
        return (st.currentHealthy, st.desiredHealthy, st.disruptionsAllowed) == (3, 2, 1) and pdb

    wait_for(budget, 60, "the PDB to count 3 healthy pods")

    def evict(name: str) -> None:
        cluster.client.create(Pod.Eviction(metadata=ObjectMeta(name=name, namespace=ns)), name=name, namespace=ns)

    uid0 = cluster.pod(ns, "trainer-0")["metadata"]["uid"]
    evict("trainer-2")  # the one disruption the budget allows
    with pytest.raises(ApiError) as refused:
        evict("trainer-0")
    assert refused.value.status.code == 429
    assert "disruption budget" in (refused.value.status.message or "")
    assert cluster.pod(ns, "trainer-0")["metadata"]["uid"] == uid0  # still the same pod
    # The evicted pod comes back (StatefulSet) on its claim and resumes.
    lines = wait_for(
        cluster.logs_when(ns, "trainer-2", lambda got: len(got) >= 4 and got[3].startswith("resumed")),
        90,
        "trainer-2 to come back after its eviction",
        cluster.tail(ns, "trainer-2"),
    )
    assert lines[0] == f"rank 2 world 3 master {master}"


# --- a restricted-PodSecurity namespace ----------------------------------------------------------


def test_restricted_pod_security_namespace_admits_and_runs_the_rendered_pods(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    ns = unique_ns("restricted")
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    cluster.client.create(Namespace(metadata=ObjectMeta(name=ns, labels=labels)))
    # The enforcement is live: a pod that is not restricted is refused here.
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "not-restricted", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": cluster.image, "imagePullPolicy": "Never"}]},
    }
    from lightkube.codecs import from_dict

    with pytest.raises(ApiError) as refused:
        cluster.client.create(from_dict(bad))
    assert refused.value.status.code == 403
    assert 'violates PodSecurity "restricted:latest"' in (refused.value.status.message or "")

    out = up(spec("trainer", ns, cluster.image, command=TRAIN, extra={"disruption": {"maxUnavailable": 1}}))
    assert "Warning" not in out
    for i in (0, 1):
        lines = wait_for(
            cluster.logs_when(ns, f"trainer-{i}", lambda got: bool(committed(got))),
            90,
            f"trainer-{i} to commit a step",
            cluster.tail(ns, f"trainer-{i}"),
        )
        assert lines[1:4] == [
            f"ids uid=1000 gid=1000 groups=1000,{FS_GROUP}",
            f"volume /ckpt owner=0:{FS_GROUP} mode=2775",
            "starting at step 0",
        ]
    got = cluster.client.get(Namespace, ns).metadata.labels
    assert got["pod-security.kubernetes.io/enforce"] == "restricted"  # berth up kept the namespace's enforce label
