"""50 TrainingClusters at once through the operator, against `berth up` of the same 50 specs in a row.

1. ``berth operator run`` (a separate process, standalone, 4 workers, resync far away) watches an
   empty namespace; all N CRs are created at once (one client, back to back). Measured: time from
   the first create until every CR has ``status.observedGeneration == 1`` (the operator applied
   everything ``berth up`` renders and wrote status), the operator's CPU seconds (utime+stime from /proc) and peak RSS
   (VmHWM), and the reconciler's API requests (its own log line; kopf's watch stream and
   annotation patches are not counted).
2. The peer, in the same run on the same API server: ``berth.kube.up.up`` (what ``berth up
   --no-wait`` runs, without the CLI start-up per spec) applying the same N specs sequentially in
   this process into another namespace; its wall time, CPU and requests.

Needs the control-plane binaries (tools/kube/build.sh). Starts its own sandbox and stops it (by
PID) at the end. Rounds alternate which side goes first (the shared machine's load drifts); each
round uses fresh namespaces and a freshly started operator. Run:
.venv/bin/python benchmarks/operator_scale.py [--clusters 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from berth.kube.apply import apply_objects
from berth.kube.client import Kube, Target, connect
from berth.kube.up import up
from berth.operator.crd import PLURAL, VERSION, crd
from berth.sandbox import NodeSpec, Sandbox, find_bin_dir
from berth.spec.load import spec_from_data


def document(namespace: str, name: str) -> dict[str, Any]:
    """A small pytorch cluster: 2 replicas, one claim each, no monitoring/backup CRDs needed."""
    return {
        "apiVersion": f"berth.dev/{VERSION}",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "framework": "pytorch",
            "replicas": 2,
            "image": "pytorch/pytorch:2.5.1",
            "command": ["torchrun", "/workspace/train.py"],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "storageClasses": {"standard": {"existing": True, "tier": "hot"}},
            "volumes": {"data": {"mountPath": "/mnt/data", "size": "1Gi", "storageClass": "standard"}},
            "scheduling": {"spread": "none"},
            "monitoring": {"prometheus": False},
        },
    }


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def statuses(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    from lightkube.generic_resource import create_namespaced_resource

    model = create_namespaced_resource("berth.dev", VERSION, "TrainingCluster", PLURAL)
    return [dict(o.get("status") or {}) for o in kube.client.list(model, namespace=namespace)]


def bench_operator(kubeconfig: Path, kube: Kube, clusters: int, work: Path, namespace: str) -> dict[str, Any]:
    apply_objects(kube, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    log = work / f"{namespace}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth", "operator", "run", "--kubeconfig", str(kubeconfig), "-n", namespace,
         "--standalone", "--resync", "1h"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "Initial authentication has finished" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"operator did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        time.sleep(1)  # its watch is open
        idle_cpu = cpu_s(proc.pid)
        from lightkube.generic_resource import create_namespaced_resource

        model = create_namespaced_resource("berth.dev", VERSION, "TrainingCluster", PLURAL)
        start = time.monotonic()
        for i in range(clusters):
            kube.client.create(model(document(namespace, f"c{i:02d}")))
        created_s = time.monotonic() - start
        reconciled_s = None
        while reconciled_s is None:
            if sum(s.get("observedGeneration") == 1 for s in statuses(kube, namespace)) == clusters:
                reconciled_s = time.monotonic() - start
            elif time.monotonic() - start > 900:
                raise SystemExit(f"not all reconciled after 900 s: {log.read_text()[-3000:]}")
            time.sleep(0.25)
        busy_cpu = cpu_s(proc.pid) - idle_cpu
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    found = re.search(r"reconciler API requests: (\d+)", log.read_text(errors="replace"))
    return {
        "created_s": created_s,
        "reconciled_s": reconciled_s,
        "cpu_s": busy_cpu,
        "rss_mib": rss,
        "requests": int(found.group(1)) if found else -1,
    }


def bench_up(kube_factory: Any, clusters: int, namespace: str) -> dict[str, Any]:
    kube: Kube = kube_factory(namespace)
    specs = [spec_from_data(document(namespace, f"c{i:02d}"), filename="-") for i in range(clusters)]
    cpu0 = time.process_time()
    start = time.monotonic()
    for spec in specs:
        up(kube, spec, wait=False)
    return {"s": time.monotonic() - start, "cpu_s": time.process_time() - cpu0, "requests": kube.requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="operator and up alternately, order swapped each round")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("control-plane binaries not built: run tools/kube/build.sh")
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        work = Path(tmp)
        box = Sandbox("bench-op", work / "sandbox")
        nodes = max(3, -(-(4 * args.clusters) // 100))
        state = box.up(NodeSpec(nodes=nodes, zones=3), bin_dir=bin_dir, timeout_s=180)
        try:

            def factory(namespace: str) -> Kube:
                return connect(Target(str(state.kubeconfig), None, namespace))

            admin = factory("default")
            apply_objects(admin, [crd()])
            time.sleep(2)  # the CRD is served
            n, ops, ups = args.clusters, [], []
            # Alternate which side goes first: the shared machine's load drifts within a run.
            for r in range(args.rounds):
                for side in ("operator", "up") if r % 2 == 0 else ("up", "operator"):
                    if side == "operator":
                        o = bench_operator(state.kubeconfig, admin, n, work, f"bench-operator-{r}")
                        ops.append(o)
                        print(
                            f"round {r} operator: {n} TrainingClusters created at once ({o['created_s']:.1f} s), "
                            f"all reconciled (objects applied, status written) {o['reconciled_s']:.1f} s; "
                            f"operator CPU {o['cpu_s']:.1f} s, peak RSS {o['rss_mib']:.0f} MiB; "
                            f"reconciler requests {o['requests']} ({o['requests'] / n:.1f} per cluster)",
                            flush=True,
                        )
                    else:
                        u = bench_up(factory, n, f"bench-up-{r}")
                        ups.append(u)
                        print(
                            f"round {r} berth up (library, sequential, no wait) of the same {n} specs: {u['s']:.1f} s,"
                            f" CPU {u['cpu_s']:.1f} s, requests {u['requests']} ({u['requests'] / n:.1f} per cluster)",
                            flush=True,
                        )
            ratios = [o["reconciled_s"] / u["s"] for o, u in zip(ops, ups, strict=True)]
            print(
                f"operator all-reconciled / sequential berth up, per round: {', '.join(f'{x:.2f}' for x in ratios)}"
                f" (median {statistics.median(ratios):.2f}); operator CPU / up CPU median "
                f"{statistics.median(o['cpu_s'] for o in ops) / statistics.median(u['cpu_s'] for u in ups):.2f}; "
                f"this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
            )
        finally:
            box.down()


if __name__ == "__main__":
    main()
