"""PyTorch reads berth's env itself: ``init_process_group("gloo", init_method="env://")`` and ``torchrun``.

Needs the ``frameworks`` extra (torch); skipped without it. Every process gets the env the
rendered preamble exported in its pod, pod names played by loopback addresses (see fw_helpers),
and runs torch's own rendezvous and a gloo all-reduce across all processes:

* ``env://``: one process per pod (no GPUs, so one slot), RANK/WORLD_SIZE/MASTER_* as exported;
* ``torchrun`` with no arguments: the elastic agent takes ``--nnodes``, ``--nproc-per-node``,
  ``--node-rank``, ``--master-addr`` and ``--master-port`` from berth's ``PET_*`` variables
  (torchrun's documented env fallback for each flag) and starts one worker per slot (2 GPUs per pod
  here, so 2 workers per pod: the ranks a multi-GPU pod gets, run on CPU with gloo).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .fw_helpers import cluster, result_lines, run_pods

pytestmark = pytest.mark.frameworks
pytest.importorskip("torch", reason="torch is in the frameworks extra: pip install -e '.[frameworks]'")

WORKER = """
import json, os
import torch
import torch.distributed as dist
from datetime import timedelta
dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=120))
t = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(t)
print("RESULT", json.dumps({"rank": dist.get_rank(), "world": dist.get_world_size(), "sum": t.item(),
                            "local_rank": os.environ.get("LOCAL_RANK"), "node": os.environ.get("GROUP_RANK")}),
      flush=True)
dist.destroy_process_group()
"""


@pytest.mark.parametrize("replicas", [2, 3])
def test_env_init_and_all_reduce(replicas: int) -> None:
    pods = cluster("pytorch", replicas)
    envs = pods.pod_envs()
    assert envs[2 % replicas]["MASTER_ADDR"] == "127.0.0.1"  # pod 0, as the preamble named it
    results = run_pods(WORKER, envs)
    seen = [json.loads(result_lines(done)[0]) for done in results]
    total = replicas * (replicas + 1) / 2
    assert seen == [
        {"rank": i, "world": replicas, "sum": total, "local_rank": None, "node": None} for i in range(replicas)
    ]


@pytest.mark.parametrize("replicas", [2, 3])
def test_torchrun_takes_berths_env(replicas: int, tmp_path: Path) -> None:
    pods = cluster("pytorch", replicas, gpus=2)
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    torchrun = [str(Path(sys.executable).parent / "torchrun"), str(script)]  # the venv's console script
    results = run_pods("", pods.pod_envs(), argv=torchrun, extra={"OMP_NUM_THREADS": "1"})
    world = 2 * replicas
    total = world * (world + 1) / 2
    for node, done in enumerate(results):
        seen = sorted((json.loads(line) for line in result_lines(done)), key=lambda r: r["rank"])
        assert seen == [
            {"rank": 2 * node + local, "world": world, "sum": total, "local_rank": str(local), "node": str(node)}
            for local in range(2)
        ], f"pod {node}"
