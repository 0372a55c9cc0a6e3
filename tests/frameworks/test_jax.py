"""JAX reads berth's env itself: ``jax.distributed.initialize()`` with no arguments, N processes.

JAX has no environment variable for the number of processes or this process's id: with no
arguments, ``initialize`` takes the coordinator from ``JAX_COORDINATOR_ADDRESS`` and the rest
from the first cluster environment it detects (Open MPI, Slurm, Cloud TPU, a Kubernetes *Job*
through the API). berth exports the Slurm variables JAX's ``SlurmCluster`` reads (see
docs/frameworks.md); these tests run JAX's own code on that env, under the rendered preamble,
with pod names played by loopback addresses (see fw_helpers).
"""

from __future__ import annotations

import pytest

from .fw_helpers import cluster, result_lines, run_pods

pytest.importorskip("jax", reason="jax is in the dev extra: pip install -e '.[dev]'")

WORKER = """
import json, os
import jax
import numpy as np
jax.distributed.initialize()
from jax.experimental import multihost_utils
ranks = multihost_utils.process_allgather(np.array([jax.process_index()]))
print("RESULT", json.dumps({"count": jax.process_count(), "index": jax.process_index(),
                            "gathered": ranks.ravel().tolist(), "devices": jax.device_count(),
                            "local": jax.local_device_count()}), flush=True)
jax.distributed.shutdown()
"""

# The CPU backend, and no HTTP proxy between the processes (JAX warns that proxies break initialize).
JAX_ENV = {"JAX_PLATFORMS": "cpu", "no_proxy": "*", "NO_PROXY": "*"}


@pytest.mark.parametrize("replicas", [2, 3])
def test_initialize_without_arguments_in_every_process(replicas: int) -> None:
    import json

    pods = cluster("jax", replicas)
    envs = pods.pod_envs()
    assert envs[1]["JAX_COORDINATOR_ADDRESS"] == f"127.0.0.1:{pods.params.port}"  # pod 0, as the preamble named it
    results = run_pods(WORKER, envs, extra=JAX_ENV)
    seen = [json.loads(result_lines(done)[0]) for done in results]
    assert seen == [
        {"count": replicas, "index": i, "gathered": list(range(replicas)), "devices": replicas, "local": 1}
        for i in range(replicas)
    ]


def test_berths_old_env_is_what_jax_refused() -> None:
    """The bug: JAX_NUM_PROCESSES/JAX_PROCESS_ID alone are not read; JAX stops before connecting."""
    pods = cluster("jax", 2)
    envs = [{k: v for k, v in env.items() if not k.startswith("SLURM_")} for env in pods.pod_envs()]
    results = run_pods(WORKER, envs[:1], extra=JAX_ENV, timeout=120)
    assert results[0].returncode != 0
    assert "Number of processes must be defined" in results[0].stderr


def test_gpu_pods_keep_every_gpu_visible() -> None:
    """JAX's Slurm path would pin a process to GPU SLURM_LOCALID; berth lists all of the pod's GPUs."""
    pods = cluster("jax", 2, gpus=4)
    env = pods.preamble_env(1)
    assert env["JAX_LOCAL_DEVICE_IDS"] == "0,1,2,3"
    assert (env["SLURM_NTASKS"], env["SLURM_PROCID"], env["SLURM_LOCALID"]) == ("2", "1", "0")
    assert env["SLURM_STEP_NODELIST"] == pods.params.host(0)
    assert "JAX_LOCAL_DEVICE_IDS" not in cluster("jax", 2).preamble_env(1)
