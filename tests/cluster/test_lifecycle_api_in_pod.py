"""spec.lifecycle's API half from real pods: `sandbox up --kubelet 1 --kube-proxy`, the runtime image.

This module needs a ClusterIP: the supervisors reach the API server the way every in-cluster
client does, through the `kubernetes` Service (KUBERNETES_SERVICE_HOST=10.96.0.1) with the pod's
ServiceAccount token, so the sandbox runs the real kube-proxy (berth.sandbox.kubeproxy). Its
iptables chains are host-wide, so this module has a sandbox of its own (one node), started only
when the host's kube-proxy slot is free, and `down` must leave no KUBE-* chain behind.

It also runs `lifecycle.runner: inject` from an image without berth: `berth sandbox image --stock`
is the runtime image's Debian rootfs (minbase, python3, Debian's numpy) without berth or any pip
package, as `berth.local/python-stock:<key>`, cached by the Debian inputs alone. The trainer is
plain python3 (no berth import) that proves, in the very container it runs in, that `import berth`
fails and nothing was pip-installed; `berth run` comes from the ConfigMap's `berth.pyz` under the
image's python3, and rank 0 scales the completed run to zero through the ClusterIP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.contract import ANNOTATION_RANK_STATE, ANNOTATION_RUN_STATE
from berth.sandbox import kubeproxy

from .real_pods import Cluster, claim_dir, spec, start_cluster, unique_ns, up_and_down, wait_for
from .test_lifecycle_in_pod import TRAINER

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def proxied() -> Iterator[Cluster]:
    deadline = time.monotonic() + 300
    while kubeproxy.SLOT.exists() and time.monotonic() < deadline:  # another session's kube-proxy sandbox
        held = json.loads(kubeproxy.SLOT.read_text() or "{}")
        if not held.get("pid") or not Path(f"/proc/{held['pid']}").exists():
            break
        time.sleep(2)
    started = time.monotonic()
    yield from start_cluster(1, kube_proxy=True, name="pytest-kube-proxy")
    print(f"[in-pod] kube-proxy sandbox lifetime: {time.monotonic() - started:.1f} s")
    assert not kubeproxy.SLOT.exists(), "sandbox down left the host's kube-proxy slot taken"
    chains = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "KUBE-SERVICES" not in chains, "sandbox down left kube-proxy's iptables rules"


@pytest.fixture
def up_proxied(proxied: Cluster, tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    yield from up_and_down(proxied, tmp_path)


def _two_ranks(ns: str, image: str, env: dict[str, str], lifecycle: dict[str, Any]) -> dict[str, Any]:
    """Two ranks of test_lifecycle_in_pod's trainer, 20 steps of 0.2 s, no back-off."""
    return spec(
        "run",
        ns,
        image,
        replicas=2,
        command=["python3", "-c", TRAINER],
        extra={
            "env": {"STEPS": "20", "STEP_SECONDS": "0.2", **env},
            "lifecycle": {"backoffSeconds": 0, **lifecycle},
        },
    )


def test_pods_report_completion_through_the_cluster_ip_and_scale_to_zero(
    proxied: Cluster, up_proxied: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("lca")
    up_proxied(_two_ranks(ns, proxied.image, {}, {}))
    # The pods' in-cluster config is the Service's ClusterIP, the only way to the API server from a pod.
    pod = proxied.pod(ns, "run-0")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
    assert "BERTH_API_SERVER" not in env
    svc = json.loads(proxied.kc("get", "service", "kubernetes", "-n", "default", "-o", "json"))
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    # Each supervisor patches its own pod (berth.dev/rank) while it runs: seen in the API.
    wait_for(
        lambda: all(
            ANNOTATION_RANK_STATE in proxied.pod(ns, f"run-{i}")["metadata"].get("annotations", {}) for i in (0, 1)
        ),
        120,
        "both pods to publish their rank through the API",
        proxied.tail(ns, "run-0"),
    )
    done = proxied.berth("wait", "run", "-n", ns, "--for", "complete", "--timeout", "180", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    sts = json.loads(proxied.kc("-n", ns, "get", "statefulset", "run", "-o", "json", "--show-managed-fields"))
    run = json.loads(sts["metadata"]["annotations"][ANNOTATION_RUN_STATE])
    assert (run["phase"], run["restarts"], run["failures"], sorted(run["completed"])) == ("Succeeded", 0, 0, [0, 1])
    assert sts["spec"]["replicas"] == 0  # rank 0 scaled its own StatefulSet down ...
    # ... from its pod: the supervisor's HTTP client is a field manager of the StatefulSet (berth's is "berth")
    managers = [(m["manager"], m["operation"], m.get("subresource")) for m in sts["metadata"]["managedFields"]]
    assert any(name.startswith("Python-urllib") for name, _, _ in managers), managers
    print(f"[in-pod] StatefulSet field managers: {managers}")
    status = json.loads(proxied.berth("status", "run", "-n", ns, "-o", "json").stdout)
    assert status["run"]["phase"] == "Succeeded", status["run"]
    wait_for(lambda: not proxied.kc("-n", ns, "get", "pods", "-o", "name").strip(), 60, "the pods to go")
    for i in (0, 1):  # the claims stay, with each rank's completion on its volume
        state = json.loads((claim_dir(proxied, ns, f"ckpt-run-{i}") / ".berth" / "run.json").read_text())
        assert state["completed"] is True and state["exitCode"] == 0


def test_a_rank_failing_every_time_fails_the_run_with_its_reason_and_releases_compute(
    proxied: Cluster, up_proxied: Callable[[dict[str, Any]], str]
) -> None:
    """maxRestarts: 1 — rank 1 fails at step 10 in both generations: Failed, scaled to 0, claims kept.

    The supervisors are berth's zipapp (``runner: inject``, from the ConfigMap), not the image's berth.
    """
    ns = unique_ns("lcx")
    failing = {"FAIL_AT": "1:10", "FAIL_ALWAYS": "1"}
    up_proxied(_two_ranks(ns, proxied.image, failing, {"maxRestarts": 1, "stopGraceSeconds": 5, "runner": "inject"}))
    wait_for(lambda: _supervisor_argv(ns).keys() == {"run-0", "run-1"}, 60, "both pods' berth.pyz supervisors")
    waited = proxied.berth("wait", "run", "-n", ns, "--for", "complete", "--timeout", "180", timeout=240)
    assert waited.returncode == 1, waited.stdout + waited.stderr
    assert "Failed: rank 1 exited 1" in waited.stdout, waited.stdout
    status = wait_for(
        lambda: (s := json.loads(proxied.berth("status", "run", "-n", ns, "-o", "json").stdout))["replicas"] == 0 and s,
        60,
        "rank 0 to scale the failed run to 0",
    )
    run = status["run"]
    assert (run["phase"], run["failedRank"], run["exitCode"], run["lastLine"]) == ("Failed", 1, 1, "boom at step 10")
    assert (run["failures"], run["restarts"]) == (2, 1), run
    text = proxied.berth("status", "run", "-n", ns).stdout
    assert "run Failed" in text and "rank 1 exited 1: boom at step 10" in text, text
    wait_for(lambda: not proxied.kc("-n", ns, "get", "pods", "-o", "name").strip(), 60, "the pods to go")
    assert len(status["claims"]) == 2, status["claims"]  # compute released, volumes kept
    for i in (0, 1):  # each rank ran twice (one gang restart) and none completed
        state = json.loads((claim_dir(proxied, ns, f"ckpt-run-{i}") / ".berth" / "run.json").read_text())
        assert state["completed"] is False and state["starts"] == 2, state
    rank1 = json.loads((claim_dir(proxied, ns, "ckpt-run-1") / ".berth" / "run.json").read_text())
    assert (rank1["exitCode"], rank1["lastLine"]) == (1, "boom at step 10"), rank1


SITE = "/usr/local/lib/python3.11/dist-packages"  # where pip would have put anything

STOCK_TRAINER = r"""
import os, subprocess, sys, time
from importlib import metadata
from pathlib import Path
rank, steps = int(os.environ["RANK"]), int(os.environ["STEPS"])
probe = subprocess.run([sys.executable, "-c", "import berth"], capture_output=True, text=True)
site = os.environ["SITE"]
seen = [
    f"import berth: exit {probe.returncode}: {probe.stderr.strip().splitlines()[-1]}",
    f"pip-installed: {sorted(os.listdir(site)) if os.path.isdir(site) else []}",
    f"distributions: {sorted(d.metadata['Name'] for d in metadata.distributions())}",
]
Path("/ckpt/seen").write_text("\n".join(seen))  # on the claim: the pod is gone once the run scaled to 0
out = Path("/ckpt") / f"trained-{rank}"
for s in range(1, steps + 1):
    time.sleep(0.1)
    with open(out, "a") as f:
        f.write(f"{s}\n")
print(f"rank {rank} finished {steps} steps", flush=True)
"""


@pytest.fixture(scope="module")
def stock(proxied: Cluster) -> str:
    """`berth sandbox image --stock` into the node (built once and cached; a node that has it is skipped)."""
    started = time.monotonic()
    done = proxied.berth("sandbox", "image", "--stock", "--state-dir", str(proxied.state_dir), "-o", "json")
    assert done.returncode == 0, done.stderr
    image = json.loads(done.stdout)
    assert image["reference"].startswith("berth.local/python-stock:") and len(image["imported"]) == 1, image
    print(f"[in-pod] stock image (cached={image['cached']}): {time.monotonic() - started:.1f} s", file=sys.stderr)
    again = json.loads(
        proxied.berth("sandbox", "image", "--stock", "--state-dir", str(proxied.state_dir), "-o", "json").stdout
    )
    assert again["cached"] is True and (again["reference"], again["digest"]) == (image["reference"], image["digest"])
    return str(image["reference"])


def test_a_stock_python_image_runs_supervised_by_the_injected_runner_and_scales_to_zero(
    proxied: Cluster, stock: str, up_proxied: Callable[[dict[str, Any]], str]
) -> None:
    ns = unique_ns("stock")
    started = time.monotonic()
    up_proxied(
        spec(
            "run",
            ns,
            stock,
            replicas=2,
            command=["python3", "-c", STOCK_TRAINER],
            extra={
                "env": {"STEPS": "10", "SITE": SITE},
                "lifecycle": {"runner": "inject", "backoffSeconds": 0, "stopGraceSeconds": 5},
            },
        )
    )
    assert {p["spec"]["containers"][0]["image"] for p in (proxied.pod(ns, f"run-{i}") for i in (0, 1))} == {stock}
    supervisors = wait_for(
        lambda: (found := _supervisor_argv(ns)).keys() == {"run-0", "run-1"} and found, 60, "both supervisors"
    )
    assert all(argv[0] == "python3" for argv in supervisors.values()), supervisors  # the image's python3
    done = proxied.berth("wait", "run", "-n", ns, "--for", "complete", "--timeout", "120", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr + proxied.tail(ns, "run-0")()
    took = time.monotonic() - started
    for i in (0, 1):
        lines = (claim_dir(proxied, ns, f"ckpt-run-{i}") / "seen").read_text().splitlines()
        assert "import berth: exit 1: ModuleNotFoundError: No module named 'berth'" in lines, lines[:6]
        assert "pip-installed: []" in lines, lines[:6]  # nothing in pip's site directory
        assert not [line for line in lines if line.startswith("distributions:") and "berth" in line], lines[:6]
    sts = wait_for(  # the injected runner scales its own StatefulSet down
        lambda: (
            (s := json.loads(proxied.kc("-n", ns, "get", "statefulset", "run", "-o", "json")))["spec"]["replicas"] == 0
            and s
        ),
        30,
        "rank 0 to scale the run to 0",
    )
    run = json.loads(sts["metadata"]["annotations"][ANNOTATION_RUN_STATE])
    assert (run["phase"], run["restarts"], sorted(run["completed"])) == ("Succeeded", 0, [0, 1]), run
    wait_for(lambda: not proxied.kc("-n", ns, "get", "pods", "-o", "name").strip(), 60, "the pods to go")
    for i in (0, 1):  # each rank trained once; the claims stay with its steps and its completion
        assert (claim_dir(proxied, ns, f"ckpt-run-{i}") / f"trained-{i}").read_text().split() == [
            str(s) for s in range(1, 11)
        ]
        state = json.loads((claim_dir(proxied, ns, f"ckpt-run-{i}") / ".berth" / "run.json").read_text())
        assert (state["completed"], state["exitCode"], state["starts"]) == (True, 0, 1), state
    claims = json.loads(proxied.kc("-n", ns, "get", "pvc", "-o", "json"))["items"]
    assert sorted((c["metadata"]["name"], c["status"]["phase"]) for c in claims) == [
        ("ckpt-run-0", "Bound"),
        ("ckpt-run-1", "Bound"),
    ]
    print(f"[in-pod] stock image: up to scaled to zero in {took:.1f} s", file=sys.stderr)


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
