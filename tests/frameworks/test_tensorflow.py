"""TensorFlow reads berth's TF_CONFIG itself: ``TFConfigClusterResolver`` in N processes.

Needs tensorflow-cpu: the ``frameworks-tf`` extra, or $BERTH_TF_PYTHON (CI: a cached venv made by
tools/frameworks/build.sh); skipped without either. Each process imports
TensorFlow and resolves its cluster from the TF_CONFIG the rendered preamble exported in its
pod, pod names played by loopback addresses (see fw_helpers). The resolver is what
``MultiWorkerMirroredStrategy`` and ``ParameterServerStrategy`` build their cluster from. A real
multi-worker server is not started: every worker listens on the rendezvous port, which on one
machine only one process can do.
"""

from __future__ import annotations

import json

import pytest

from .fw_helpers import cluster, framework_python, result_lines, run_pods

pytestmark = pytest.mark.frameworks
PYTHON = framework_python(
    "tensorflow",
    "BERTH_TF_PYTHON",
    "pip install -e '.[frameworks-tf]', or BERTH_TF_PYTHON=$(tools/frameworks/build.sh) as CI does",
)

WORKER = """
import json
import tensorflow as tf
r = tf.distribute.cluster_resolver.TFConfigClusterResolver()
print("RESULT", json.dumps({"cluster": r.cluster_spec().as_dict(), "type": r.task_type, "id": r.task_id,
                            "master": r.master(), "workers": r.cluster_spec().num_tasks("worker")}), flush=True)
"""


@pytest.mark.parametrize("replicas", [3])  # one case: each TensorFlow process takes seconds to import
def test_resolver_reads_each_pods_task(replicas: int) -> None:
    pods = cluster("tensorflow", replicas)
    port = pods.params.port
    results = run_pods(WORKER, pods.pod_envs(), extra={"TF_CPP_MIN_LOG_LEVEL": "3"}, python=PYTHON, timeout=400)
    seen = [json.loads(result_lines(done)[0]) for done in results]
    workers = [f"127.0.0.{i + 1}:{port}" for i in range(replicas)]
    # TF_CONFIG names no rpc_layer, so master() is this task's host:port without a scheme.
    assert seen == [
        {
            "cluster": {"worker": workers},
            "type": "worker",
            "id": i,
            "master": f"127.0.0.{i + 1}:{port}",
            "workers": replicas,
        }
        for i in range(replicas)
    ]
