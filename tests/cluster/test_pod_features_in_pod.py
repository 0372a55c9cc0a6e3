"""Pod features in real containers: ``shm`` and the ``podTemplate`` overlay, with init containers, a
native sidecar and env from a Secret, on the session's `sandbox up --kubelet 2` sandbox.

The render tests (tests/render/test_pod_features.py) and the server dry run
(test_pod_features_server_dry_run.py) show the objects are right; these show the kubelet, containerd
and runc do what berth means by them: a memory-backed ``/dev/shm`` of the spec's size that takes a write
the runtime's 64 MiB default refuses, and an overlay whose additions reach the running process while
berth's rendezvous env, claim and security context stay. Each test applies one spec with `berth up`
(the ``up`` fixture) in a namespace of its own; the commands are short ``python3 -c`` scripts run in
the runtime image.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .real_pods import FS_GROUP, Cluster, spec, unique_ns, wait_for

pytestmark = pytest.mark.cluster


def _up_and_read(
    cluster: Cluster, up: Callable[[dict[str, Any]], str], document: dict[str, Any], pod: str, last: str
) -> list[str]:
    """`berth up DOCUMENT`, then POD's trainer log once it has printed LAST (each probe runs in seconds)."""
    up(document)
    ns = document["metadata"]["namespace"]
    lines: list[str] = wait_for(
        cluster.logs_when(ns, pod, lambda got: last in got), 60, f"{pod} to print {last!r}", cluster.tail(ns, pod)
    )
    return lines


# One fact a line: the filesystem type and size of /dev/shm as this container sees it, then whether a
# 96 MiB file (more than the runtime's 64 MiB default, the DataLoader case) fits. Random bytes, so
# nothing could be deduplicated; the file is removed after. "sleep" keeps the trainer running.
SHM_PROBE = r"""
import errno, os, sys, time
fields = [line.split() for line in open("/proc/mounts") if line.split()[1] == "/dev/shm"][-1]
st = os.statvfs("/dev/shm")
print(f"shm {fields[2]} {st.f_blocks * st.f_frsize // 2**20} MiB", flush=True)
path, block = f"/dev/shm/probe-{os.getpid()}", os.urandom(2**20)
try:
    with open(path, "wb") as f:
        for _ in range(96):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    print(f"wrote {os.path.getsize(path) // 2**20} MiB", flush=True)
except OSError as err:
    print(f"write failed {errno.errorcode[err.errno]}", flush=True)
finally:
    if os.path.exists(path):
        os.unlink(path)
print("done", flush=True)
if sys.argv[1:] == ["sleep"]:
    time.sleep(3600)
"""


def test_shm_is_a_tmpfs_of_the_spec_size_that_takes_more_than_the_64mib_default(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    """The trainer's /dev/shm is tmpfs of ``spec.shm`` and takes 96 MiB; an init container of the same pod,
    which does not mount it, sees the runtime's 64 MiB /dev/shm refuse the same write (ENOSPC)."""
    ns = unique_ns("shm")
    document = spec(
        "shm",
        ns,
        cluster.image,
        replicas=1,
        command=["python3", "-c", SHM_PROBE, "sleep"],
        extra={
            "shm": "256Mi",
            "initContainers": [{"name": "default-shm", "command": ["python3", "-c", SHM_PROBE]}],
        },
    )
    trainer = _up_and_read(cluster, up, document, "shm-0", "done")
    assert trainer == ["shm tmpfs 256 MiB", "wrote 96 MiB", "done"]
    init = cluster.kc("-n", ns, "logs", "shm-0", "-c", "default-shm").splitlines()
    assert init == ["shm tmpfs 64 MiB", "write failed ENOSPC", "done"]
    pod = cluster.pod(ns, "shm-0")
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "shm"]
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}


# The trainer of the overlay test: what reached it from the overlay (EXTRA, /exchange), from the Secret
# (HF_TOKEN), from the init container and the sidecar (files in /exchange), and what berth gives every
# pod (the preamble's rendezvous env, its ids, its claim).
TEMPLATE_PROBE = r"""
import os, time
deadline = time.monotonic() + 60
while not os.path.exists("/exchange/sidecar") and time.monotonic() < deadline:
    time.sleep(0.2)
for name in ("EXTRA", "HF_TOKEN", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "BERTH_REPLICAS"):
    print(f"env {name}={os.environ.get(name)}", flush=True)
print(f"ids uid={os.getuid()} gid={os.getgid()} groups={','.join(map(str, sorted(os.getgroups())))}", flush=True)
for name in ("init", "sidecar"):
    path = f"/exchange/{name}"
    print(f"{name}: {open(path).read().strip() if os.path.exists(path) else 'missing'}", flush=True)
with open("/ckpt/probe", "w") as f:
    f.write("ok")
print("claim writable", flush=True)
time.sleep(3600)
"""
INIT = "open('/exchange/init', 'w').write('written before the trainer'); print('init wrote /exchange/init')"
SIDECAR = (
    "import os, time; open('/exchange/sidecar', 'w').write(f'running as {os.getuid()}');"
    " print('sidecar up', flush=True); time.sleep(3600)"
)


def test_pod_template_overlay_init_container_sidecar_and_secret_env_reach_the_running_pod(
    cluster: Cluster, up: Callable[[dict[str, Any]], str]
) -> None:
    """A strategic-merge overlay (env, label, annotation, an emptyDir and its mount) on top of berth's
    pod; an init container and a native sidecar share that emptyDir with the trainer; ``HF_TOKEN``
    comes from a Secret. berth's rendezvous env, claim, ids and security context are all still there."""
    ns = unique_ns("overlay")
    token = uuid.uuid4().hex
    cluster.kc("create", "namespace", ns)
    cluster.kc("-n", ns, "create", "secret", "generic", "hf", f"--from-literal=token={token}")
    exchange = [{"name": "exchange", "mountPath": "/exchange"}]
    features = {
        "env": {"HF_TOKEN": {"valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}},
        "initContainers": [{"name": "prep", "command": ["python3", "-c", INIT], "volumeMounts": exchange}],
        "sidecars": [{"name": "agent", "command": ["python3", "-c", SIDECAR], "volumeMounts": exchange}],
        "podTemplate": {
            "metadata": {"labels": {"team": "vision"}, "annotations": {"example.com/owner": "alice"}},
            "spec": {
                "containers": [
                    {"name": "trainer", "env": [{"name": "EXTRA", "value": "from-overlay"}], "volumeMounts": exchange}
                ],
                "volumes": [{"name": "exchange", "emptyDir": {}}],
            },
        },
    }
    command = ["python3", "-c", TEMPLATE_PROBE]
    document = spec("ov", ns, cluster.image, replicas=1, command=command, extra=features)
    lines = _up_and_read(cluster, up, document, "ov-0", "claim writable")
    assert lines == [
        "env EXTRA=from-overlay",
        f"env HF_TOKEN={token}",
        f"env MASTER_ADDR=ov-0.ov.{ns}.svc.cluster.local",
        "env MASTER_PORT=29500",
        "env RANK=0",
        "env WORLD_SIZE=1",
        "env BERTH_REPLICAS=1",
        f"ids uid=1000 gid=1000 groups=1000,{FS_GROUP}",
        "init: written before the trainer",
        "sidecar: running as 1000",
        "claim writable",
    ]
    assert cluster.kc("-n", ns, "logs", "ov-0", "-c", "prep").splitlines() == ["init wrote /exchange/init"]
    assert cluster.kc("-n", ns, "logs", "ov-0", "-c", "agent").splitlines() == ["sidecar up"]

    pod = cluster.pod(ns, "ov-0")
    sts = json.loads(cluster.kc("-n", ns, "get", "statefulset", "ov", "-o", "json"))
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "vision"
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()  # berth's labels kept
    assert pod["metadata"]["annotations"]["example.com/owner"] == "alice"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["ckpt"]["persistentVolumeClaim"] == {"claimName": "ckpt-ov-0"}
    assert volumes["exchange"]["emptyDir"] == {}
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    assert pod["spec"]["securityContext"]["fsGroup"] == FS_GROUP
    # Init container, then the native sidecar (restartPolicy Always), on the trainer's image pulled as the
    # trainer's (Never: the sandbox has no registry), each with berth's security context.
    assert [(c["name"], c.get("restartPolicy"), c["imagePullPolicy"]) for c in pod["spec"]["initContainers"]] == [
        ("prep", None, "Never"),
        ("agent", "Always", "Never"),
    ]
    (trainer,) = pod["spec"]["containers"]
    for container in [trainer, *pod["spec"]["initContainers"]]:
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in trainer["volumeMounts"]} >= {"/ckpt", "/exchange"}
    statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    assert statuses["prep"]["state"]["terminated"]["exitCode"] == 0
    assert "running" in statuses["agent"]["state"]  # beside the trainer, not run to completion
    assert statuses["agent"]["restartCount"] == 0
