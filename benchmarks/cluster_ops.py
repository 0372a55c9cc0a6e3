"""Cluster operations on the sandbox: API requests and time, berth against its peers in the same run.

1. ``berth up`` of a 100-replica cluster until every pod is Ready and every claim Bound, versus
   ``kubectl apply --server-side -f <rendered>`` + ``kubectl rollout status`` (kubectl built from
   the same module set as the control plane; requests counted from its ``-v=6`` log, a fresh
   discovery cache so it pays discovery like a first run).
2. ``berth status`` on 500 pods (goal: at most 5 requests, under 1 s) versus a naive status that
   GETs every pod and claim.

Needs the control-plane binaries (tools/kube/build.sh). Starts its own sandbox with enough
fake nodes and stops it (by PID) at the end. Run: .venv/bin/python benchmarks/cluster_ops.py
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from berth.kube.apply import desired_objects
from berth.kube.client import Kube, Target, connect, resource_type
from berth.kube.status import collect
from berth.kube.up import up
from berth.render.output import to_stream
from berth.sandbox import NodeSpec, Sandbox, find_bin_dir
from berth.spec.load import parse_spec


def spec(namespace: str, name: str, replicas: int, volumes: int) -> Any:
    vols = {f"vol{i}": {"mountPath": f"/mnt/v{i}", "size": "1Gi", "storageClass": "standard"} for i in range(volumes)}
    doc = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "framework": "pytorch",
            "replicas": replicas,
            "image": "pytorch/pytorch:2.5.1",
            "command": ["torchrun", "/workspace/train.py"],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "storageClasses": {"standard": {"existing": True, "tier": "hot"}},
            "volumes": vols,
            "scheduling": {"spread": "none"},
            "monitoring": {"prometheus": False},
        },
    }
    return parse_spec(yaml.safe_dump(doc))


def kubectl_run(kubectl: Path, kubeconfig: Path, cache: Path, *args: str) -> tuple[int, float]:
    """Run kubectl with -v=6; return (HTTP requests it logged, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), "-v=6", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {proc.stderr[-2000:]}")
    requests = len(re.findall(r'"Response" verb="|\] (GET|PUT|POST|PATCH|DELETE) https?://', proc.stderr))
    return requests, elapsed


def bench_up(kube_factory: Any, kubectl: Path, kubeconfig: Path, replicas: int, work: Path) -> dict[str, Any]:
    berth_spec = spec("bench-berth", "train", replicas, 1)
    kube: Kube = kube_factory("bench-berth")
    start = time.monotonic()
    up(kube, berth_spec, timeout_s=900)
    berth_s = time.monotonic() - start
    berth_requests = kube.requests

    peer_spec = spec("bench-kubectl", "train", replicas, 1)
    # kubectl cannot apply kinds whose CRD is absent; berth skips those, so give kubectl the same set.
    objects = [o for o in desired_objects(peer_spec) if resource_type(o["apiVersion"], o["kind"]) is not None]
    manifest = work / "rendered.yaml"
    manifest.write_text(to_stream(objects))
    cache = work / "kubectl-cache"
    apply_req, apply_s = kubectl_run(
        kubectl, kubeconfig, cache, "apply", "--server-side", "--field-manager=bench", "-f", str(manifest)
    )
    roll_req, roll_s = kubectl_run(
        kubectl, kubeconfig, cache, "rollout", "status", "statefulset/train", "-n", "bench-kubectl", "--timeout=900s"
    )
    return {
        "replicas": replicas,
        "berth_requests": berth_requests,
        "berth_s": berth_s,
        "kubectl_requests": apply_req + roll_req,
        "kubectl_s": apply_s + roll_s,
    }


def naive_status(kube: Kube, namespace: str, name: str, pods: list[str], claims: list[str]) -> None:
    """The peer: what a status that reads object by object costs."""
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

    kube.client.get(StatefulSet, name, namespace=namespace)
    for pod in pods:
        kube.client.get(Pod, pod, namespace=namespace)
    for claim in claims:
        kube.client.get(PersistentVolumeClaim, claim, namespace=namespace)


def bench_status(kube_factory: Any, pods: int) -> dict[str, Any]:
    kube: Kube = kube_factory("bench-status")
    up(kube, spec("bench-status", "big", pods, 1), timeout_s=1200)
    runs = []
    for _ in range(3):
        probe: Kube = kube_factory("bench-status")
        start = time.monotonic()
        state = collect(probe, "big", "bench-status")
        runs.append((time.monotonic() - start, probe.requests))
    best_s, requests = min(runs)
    peer: Kube = kube_factory("bench-status")
    start = time.monotonic()
    naive_status(peer, "bench-status", "big", [p.name for p in state.pods], [c.name for c in state.claims])
    return {
        "pods": len(state.pods),
        "claims": len(state.claims),
        "berth_requests": requests,
        "berth_s": best_s,
        "naive_requests": peer.requests,
        "naive_s": time.monotonic() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--status-pods", type=int, default=500)
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("control-plane binaries not built: run tools/kube/build.sh")
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        work = Path(tmp)
        box = Sandbox("bench", work / "sandbox")
        nodes = max(3, -(-(args.status_pods + 2 * args.replicas) // 100))
        state = box.up(NodeSpec(nodes=nodes, zones=3), bin_dir=bin_dir, timeout_s=180)
        try:

            def factory(namespace: str) -> Kube:
                return connect(Target(str(state.kubeconfig), None, namespace))

            u = bench_up(factory, bin_dir / "kubectl", state.kubeconfig, args.replicas, work)
            print(
                f"up {u['replicas']} replicas to Ready: berth {u['berth_requests']} requests "
                f"{u['berth_s']:.1f} s | kubectl apply --server-side + rollout status {u['kubectl_requests']} "
                f"requests {u['kubectl_s']:.1f} s | time ratio berth/kubectl "
                f"{u['berth_s'] / u['kubectl_s']:.2f}"
            )
            s = bench_status(factory, args.status_pods)
            print(
                f"status on {s['pods']} pods / {s['claims']} claims: berth {s['berth_requests']} requests "
                f"{s['berth_s'] * 1000:.0f} ms | per-object GETs {s['naive_requests']} requests "
                f"{s['naive_s'] * 1000:.0f} ms | speed-up {s['naive_s'] / s['berth_s']:.1f}x"
            )
        finally:
            box.down()


if __name__ == "__main__":
    main()
