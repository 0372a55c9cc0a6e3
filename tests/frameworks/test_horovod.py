"""Horovod's launcher reads berth's env: ``horovodrun -np $HOROVOD_NUM_PROC -H $HOROVOD_HOSTS``.

berth does not set the per-process variables Horovod's workers read (HOROVOD_RANK, _SIZE,
_LOCAL_RANK, _CROSS_RANK, HOROVOD_GLOO_RENDEZVOUS_ADDR/PORT, ...): ``horovodrun`` sets them for
each slot it starts, and points them at the HTTP rendezvous server it runs itself; a pod with
several GPUs runs several workers, which one preamble per pod cannot tell apart. What berth
exports is horovodrun's input, run from pod 0 (docs/frameworks.md).

These tests feed that env, as the rendered preamble exported it, to Horovod's own host parser
and slot planner (``horovod.runner.common.util.hosts``: what ``horovodrun -H/-np`` calls) and check
the ranks each pod's workers would get. Horovod's workers (``hvd.init()``) are not run: Horovod
builds from source against a framework, which is not done here (see docs/testing.md). The
launcher module is pure Python: ``PYTHONPATH`` pointing at an unpacked Horovod source release
is enough to run these; without it they skip.
"""

from __future__ import annotations

import pytest

from .fw_helpers import cluster

pytestmark = pytest.mark.frameworks
hosts = pytest.importorskip(
    "horovod.runner.common.util.hosts",
    reason="horovod is not importable: it builds from source (see docs/testing.md for running these "
    "with PYTHONPATH at an unpacked Horovod release)",
)


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("gpus", [0, 4])
def test_horovodrun_plans_the_ranks_each_pod_gets(replicas: int, gpus: int) -> None:
    pods = cluster("horovod", replicas, gpus=gpus)
    slots = max(gpus, 1)
    for ordinal in range(replicas):
        env = pods.preamble_env(ordinal)
        assert env["HOROVOD_NUM_PROC"] == str(replicas * slots)
        parsed = hosts.parse_hosts(env["HOROVOD_HOSTS"])
        assert [(h.hostname, h.slots) for h in parsed] == [(pods.params.host(i), slots) for i in range(replicas)]
        plan = hosts.get_host_assignments(parsed, int(env["HOROVOD_NUM_PROC"]))
        mine = [s for s in plan if s.hostname == env["HOROVOD_HOSTNAME"]]
        assert [(s.rank, s.local_rank, s.cross_rank) for s in mine] == [
            (ordinal * slots + local, local, ordinal) for local in range(slots)
        ]
        assert {(s.size, s.local_size, s.cross_size) for s in plan} == {(replicas * slots, slots, replicas)}
