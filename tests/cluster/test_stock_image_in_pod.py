"""`lifecycle.runner: inject` in real pods from an image without berth: the stock python image.

`berth sandbox image --stock` is the runtime image's Debian rootfs (minbase, python3, Debian's
numpy) without berth or any pip package, as `berth.local/python-stock:<key>`, cached by the
Debian inputs alone and imported into both real nodes like the runtime image. A two-rank run
with that image and `runner: inject` runs `berth run` from the ConfigMap's `berth.pyz` under the
image's python3; the trainer is plain python3 (no berth import) that proves, in the very
container it runs in, that `import berth` fails and nothing was pip-installed.

The shared real-pods sandbox has no kube-proxy, so the supervisors cannot reach the API: rank 0
decides to scale to zero and says it cannot (the scale itself, from the injected runner, is
test_lifecycle_api_in_pod.py's, in the sandbox with a ClusterIP).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .real_pods import Cluster, claim_dir, spec, unique_ns, wait_for

pytestmark = pytest.mark.cluster

SITE = "/usr/local/lib/python3.11/dist-packages"  # where pip would have put anything

TRAINER = r"""
import os, subprocess, sys, time
from importlib import metadata
from pathlib import Path
rank, steps = int(os.environ["RANK"]), int(os.environ["STEPS"])
probe = subprocess.run([sys.executable, "-c", "import berth"], capture_output=True, text=True)
print(f"import berth: exit {probe.returncode}: {probe.stderr.strip().splitlines()[-1]}", flush=True)
site = os.environ["SITE"]
print(f"pip-installed: {sorted(os.listdir(site)) if os.path.isdir(site) else []}", flush=True)
print(f"distributions: {sorted(d.metadata['Name'] for d in metadata.distributions())}", flush=True)
out = Path("/ckpt") / f"trained-{rank}"
for s in range(1, steps + 1):
    time.sleep(0.1)
    with open(out, "a") as f:
        f.write(f"{s}\n")
print(f"rank {rank} finished {steps} steps", flush=True)
"""


@pytest.fixture(scope="module")
def stock(cluster: Cluster) -> Iterator[str]:
    """`berth sandbox image --stock` into both nodes (built once and cached; a node that has it is skipped)."""
    started = time.monotonic()
    done = cluster.berth("sandbox", "image", "--stock", "--state-dir", str(cluster.state_dir), "-o", "json")
    assert done.returncode == 0, done.stderr
    image = json.loads(done.stdout)
    assert image["reference"].startswith("berth.local/python-stock:") and len(image["imported"]) == 2, image
    print(f"[in-pod] stock image (cached={image['cached']}): {time.monotonic() - started:.1f} s", file=sys.stderr)
    again = json.loads(
        cluster.berth("sandbox", "image", "--stock", "--state-dir", str(cluster.state_dir), "-o", "json").stdout
    )
    assert again["cached"] is True and (again["reference"], again["digest"]) == (image["reference"], image["digest"])
    yield str(image["reference"])


def _completed(cluster: Cluster, ns: str) -> Callable[[], list[dict[str, Any]] | None]:
    def read() -> list[dict[str, Any]] | None:
        states = []
        for i in range(2):
            try:
                states.append(json.loads((claim_dir(cluster, ns, f"ckpt-run-{i}") / ".berth" / "run.json").read_text()))
            except FileNotFoundError:
                return None
        succeeded = states[0].get("gang", {}).get("phase") == "Succeeded"
        return states if succeeded and all(s["completed"] for s in states) else None

    return read


def _supervisor_argv(ns: str) -> dict[str, list[str]]:
    """Each pod's supervisor command line, from this host's /proc (the real nodes' processes are ours)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            if argv[1:2] != ["/berth-runner/berth.pyz"]:
                continue
            env = dict(kv.split("=", 1) for kv in (proc / "environ").read_text().split("\0") if "=" in kv)
        except (OSError, IndexError):
            continue
        if env.get("BERTH_NAMESPACE") == ns:
            found[env.get("POD_NAME", "")] = argv
    return found


def test_a_stock_python_image_runs_supervised_by_the_injected_runner(
    cluster: Cluster, stock: str, up: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("stock")
    started = time.monotonic()
    up(
        spec(
            "run",
            ns,
            stock,
            replicas=2,
            command=["python3", "-c", TRAINER],
            extra={
                "env": {"STEPS": "10", "SITE": SITE},
                "lifecycle": {"runner": "inject", "backoffSeconds": 0, "stopGraceSeconds": 5},
            },
        )
    )
    assert {p["spec"]["containers"][0]["image"] for p in (cluster.pod(ns, f"run-{i}") for i in (0, 1))} == {stock}
    supervisors = wait_for(
        lambda: (found := _supervisor_argv(ns)).keys() == {"run-0", "run-1"} and found, 60, "both supervisors"
    )
    assert all(argv[0] == "python3" for argv in supervisors.values()), supervisors  # the image's python3
    states = wait_for(_completed(cluster, ns), 120, "both ranks to complete", cluster.tail(ns, "run-0"))
    took = time.monotonic() - started
    assert [s["exitCode"] for s in states] == [0, 0] and [s["starts"] for s in states] == [1, 1], states
    for i in (0, 1):
        logs = cluster.logs(ns, f"run-{i}")
        text = "\n".join(logs)
        assert "import berth: exit 1: ModuleNotFoundError: No module named 'berth'" in logs, logs[:6]
        assert "pip-installed: []" in logs, logs[:6]  # nothing in pip's site directory
        assert not [line for line in logs if line.startswith("distributions:") and "berth" in line], logs[:6]
        assert f"rank {i} finished 10 steps" in logs and "no python3" not in text and "no berth" not in text
        assert (claim_dir(cluster, ns, f"ckpt-run-{i}") / f"trained-{i}").read_text().split() == [
            str(s) for s in range(1, 11)
        ]
        status = cluster.pod(ns, f"run-{i}")["status"]["containerStatuses"][0]
        assert status["restartCount"] == 0 and "running" in status["state"]  # a completed rank idles
    rank0 = cluster.logs(ns, "run-0")
    assert any("every rank completed: the run Succeeded" in line for line in rank0)
    # The decision to release compute was made; this sandbox has no route to the API (no kube-proxy).
    wait_for(
        lambda: any("cannot patch statefulsets/run/scale" in line for line in cluster.logs(ns, "run-0")),
        30,
        "rank 0 to try the scale subresource",
        cluster.tail(ns, "run-0"),
    )
    claims = json.loads(cluster.kc("-n", ns, "get", "pvc", "-o", "json"))["items"]
    assert sorted((c["metadata"]["name"], c["status"]["phase"]) for c in claims) == [
        ("ckpt-run-0", "Bound"),
        ("ckpt-run-1", "Bound"),
    ]
    print(f"[in-pod] stock image: up to Succeeded in {took:.1f} s", file=sys.stderr)
