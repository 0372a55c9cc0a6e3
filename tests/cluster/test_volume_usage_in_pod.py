"""`berth status` used space from real kubelets: a pod writes known amounts, status reports them.

Real pods on the session's two-kubelet sandbox (``cluster``). The claims the pod writes are ``local``
PVs on tmpfs mounts made here (a filesystem of their own: the kubelet's statfs then measures exactly
the claim, to the page), pre-bound to the StatefulSet's claim name and to a shared claim. Next to
them, a claim of the sandbox's provisioner (a ``local`` directory on this machine's disk: the kubelet
reports the disk's figures, which status flags) and a ``hostPath`` claim (the kubelet's hostPath
plugin has no metrics: status says so instead of a zero). Status is run as admin, as a ServiceAccount
with exactly docs/rbac.md's Role and ClusterRole (one line: no ``get nodes/proxy``), and with the
optional ``berth-volume-stats`` ClusterRole added (the figures).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .real_pods import BERTH, Cluster, claim_dir, spec, unique_ns, wait_for
from .test_rbac import RBAC_DOC, documented_deployer

pytestmark = pytest.mark.cluster

MI = 1 << 20
CLASS = "berth-usage-tmpfs"  # no StorageClass object: static PVs bind to claims by class name
NODE = "sandbox-kubelet-0"
CKPT_BYTES = 10 * MI
SCRATCH_BYTES = 14 * MI + MI // 2  # 90.6 % of 16 MiB: above the 85 % flag
# The shell stays PID 1 and ends on SIGTERM (a bare `sleep` as PID 1 ignores it: `down` would wait
# out the 30 s grace period).
SCRIPT = (
    f"head -c {CKPT_BYTES} /dev/urandom > /ckpt/ten && head -c {SCRATCH_BYTES} /dev/zero > /scratch/fill"
    " && touch /ckpt/done; trap 'exit 0' TERM; sleep 3600 & wait"
)


def _pv(name: str, size: str, path: Path, *, local: bool) -> dict[str, Any]:
    source = {"local": {"path": str(path)}} if local else {"hostPath": {"path": str(path), "type": "Directory"}}
    affinity = {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}
            ]
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": CLASS,
            **source,
            **({"nodeAffinity": affinity} if local else {}),
        },
    }


def _pvc(name: str, ns: str, size: str, volume: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": CLASS,
            "volumeName": volume,
            "resources": {"requests": {"storage": size}},
        },
    }


def _in_nodes(cluster: Cluster, *argv: str) -> str:
    """Run ARGV in the real nodes' mount namespace (the sandbox's ``mount-namespace`` holder).

    The kubelets and containerd live there with private propagation, so a tmpfs mounted on the
    host would stay invisible to them: the pod would write into the directory underneath.
    """
    state = json.loads((cluster.state_dir / "state.json").read_text())
    (holder,) = [p["pid"] for p in state["processes"] if p["name"] == "mount-namespace"]
    done = subprocess.run(
        ["nsenter", f"--mount=/proc/{holder}/ns/mnt", "--", *argv], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@contextlib.contextmanager
def _tmpfs(cluster: Cluster, root: Path, name: str, size: str, inodes: int) -> Iterator[Path]:
    path = root / name
    path.mkdir()
    _in_nodes(cluster, "mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}", f"berth-{name}", str(path))
    try:
        yield path
    finally:
        _in_nodes(cluster, "umount", str(path))


def _status(cluster: Cluster, name: str, ns: str, *args: str, kubeconfig: Path | None = None) -> str:
    env = {**cluster.env, **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}
    done = subprocess.run(
        [*BERTH, "status", name, "-n", ns, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _statfs(cluster: Cluster, path: Path) -> tuple[int, int, int, int]:
    """Used and total bytes, total and used inodes of the filesystem at PATH, as the nodes see it."""
    blocks, free, size, files, ffree = map(
        int, _in_nodes(cluster, "stat", "-f", "-c", "%b %f %S %c %d", str(path)).split()
    )
    return (blocks - free) * size, blocks * size, files, files - ffree


def test_status_reports_what_a_pod_wrote(cluster: Cluster, tmp_path: Path) -> None:
    ns, name = unique_ns("usage"), "use"
    root = Path(tempfile.mkdtemp(prefix="berth-usage-"))
    pvs = [f"{ns}-ckpt", f"{ns}-scratch", f"{ns}-hostpath"]
    document = spec(
        name,
        ns,
        cluster.image,
        replicas=1,
        command=["sh", "-c", SCRIPT],
        extra={
            "volumes": {
                "ckpt": {"mountPath": "/ckpt", "size": "64Mi", "storageClass": "standard"},
                "data": {"mountPath": "/data", "size": "1Gi", "storageClass": "standard"},
            },
            "sharedVolumes": {
                "scratch": {
                    "claimName": "scratch",
                    "mountPath": "/scratch",
                    "existing": True,
                    "accessMode": "ReadWriteOnce",
                    "readOnly": False,
                },
                "host": {
                    "claimName": "host",
                    "mountPath": "/host",
                    "existing": True,
                    "accessMode": "ReadWriteOnce",
                    "readOnly": False,
                },
            },
        },
    )
    path = tmp_path / "usage.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        ckpt = stack.enter_context(_tmpfs(cluster, root, "ckpt", "64m", 1000))
        scratch = stack.enter_context(_tmpfs(cluster, root, "scratch", "16m", 1000))
        host = root / "host"
        host.mkdir(mode=0o777)
        try:
            cluster.kc("create", "namespace", ns)
            objects = [
                _pv(pvs[0], "64Mi", ckpt, local=True),
                _pv(pvs[1], "16Mi", scratch, local=True),
                _pv(pvs[2], "1Gi", host, local=False),
                _pvc(f"ckpt-{name}-0", ns, "64Mi", pvs[0]),
                _pvc("scratch", ns, "16Mi", pvs[1]),
                _pvc("host", ns, "1Gi", pvs[2]),
            ]
            manifest = tmp_path / "static.yaml"
            manifest.write_text(yaml.safe_dump_all(objects))
            cluster.kc("apply", "-f", str(manifest))
            done = cluster.berth("up", str(path), "--timeout", "180")
            assert done.returncode == 0, done.stdout + done.stderr
            _check_admin_view(cluster, name, ns, ckpt, scratch)
            _check_permissions(cluster, name, ns, tmp_path)
        finally:
            cluster.berth("down", name, "-n", ns, "--delete-volumes", "--yes")
            cluster.kc("delete", "namespace", ns, "--wait=true", "--timeout=120s", check=False, timeout=150)
            cluster.kc("delete", "pv", *pvs, "--ignore-not-found", "--wait=false", check=False)


def _check_admin_view(cluster: Cluster, name: str, ns: str, ckpt: Path, scratch: Path) -> None:
    last: list[dict[str, Any]] = []

    def written() -> dict[str, Any] | None:
        doc: dict[str, Any] = json.loads(_status(cluster, name, ns, "-o", "json"))
        last[:] = [doc]
        usage = {c["name"]: c for c in [*doc["claims"], *doc["shared"]]}
        ok = (usage[f"ckpt-{name}-0"]["usage"] or {}).get("usedBytes", 0) >= CKPT_BYTES
        ok = ok and (usage["scratch"]["usage"] or {}).get("usedBytes", 0) >= SCRATCH_BYTES
        return doc if ok and _in_nodes(cluster, "ls", str(ckpt)).split() == ["done", "ten"] else None

    started = time.monotonic()
    doc = wait_for(
        written,
        60,
        "the kubelet's stats to show the pod's writes",
        lambda: json.dumps(
            [{c["name"]: c["usage"] for c in [*d["claims"], *d["shared"]]} | {"notes": d["notes"]} for d in last]
        ),
    )
    print(f"[usage] stats showed the writes after {time.monotonic() - started:.1f} s")
    claims = {c["name"]: c for c in [*doc["claims"], *doc["shared"]]}
    assert doc["apiRequests"] == 5  # StatefulSet, pods, claims, nodes + one summary for the one node

    ck = claims[f"ckpt-{name}-0"]["usage"]
    used, capacity, inodes, inodes_used = _statfs(cluster, ckpt)
    assert CKPT_BYTES <= ck["usedBytes"] <= CKPT_BYTES + 64 * 1024 and ck["usedBytes"] == used
    assert ck["capacityBytes"] == capacity == 64 * MI and ck["inodes"] == inodes == 1000
    assert ck["inodesUsed"] == inodes_used and ck["node"] == NODE
    assert ck["full"] is False and ck["sharedFilesystem"] is False

    sc = claims["scratch"]["usage"]
    assert (
        SCRATCH_BYTES <= sc["usedBytes"] <= SCRATCH_BYTES + 64 * 1024
        and sc["usedBytes"] == _statfs(cluster, scratch)[0]
    )
    assert sc["capacityBytes"] == 16 * MI and sc["usedRatio"] > 0.85 and sc["full"] is True

    # The provisioner's claim: a directory on this machine's disk, so the kubelet's figures are the disk's.
    data = claims[f"data-{name}-0"]
    disk = os.statvfs(claim_dir(cluster, ns, f"data-{name}-0"))
    assert data["usage"]["capacityBytes"] == disk.f_blocks * disk.f_frsize
    assert data["usage"]["sharedFilesystem"] is True

    # hostPath: the kubelet's plugin has no metrics, the summary omits it; no zero is shown.
    assert claims["host"]["usage"] is None
    assert (
        claims["host"]["usageUnknown"] == "the kubelet reports no stats for this volume (e.g. hostPath has no metrics)"
    )

    text = _status(cluster, name, ns)
    row = next(line for line in text.splitlines() if re.match(r"\s*-\s+-\s+scratch\s", line))
    assert "FULL" in row and "shared" in row
    assert "note: scratch above 85% full (bytes or inodes): expand or prune" in text
    assert f"note: used space of data-{name}-0 is its filesystem's, larger than the claim" in text
    assert "note: used space of host: the kubelet reports no stats" in text


def _check_permissions(cluster: Cluster, name: str, ns: str, tmp_path: Path) -> None:
    from lightkube.codecs import from_dict
    from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

    with documented_deployer(cluster.client, cluster.kubeconfig, ns, tmp_path) as deployer:
        text = _status(cluster, name, ns, kubeconfig=deployer)
        assert f'note: used space unknown: user "system:serviceaccount:{ns}:deployer" lacks get on nodes/proxy' in text
        assert f"ckpt-{name}-0" in text and "1/1 ready" in text  # the rest of status as usual
        doc = json.loads(_status(cluster, name, ns, "-o", "json", kubeconfig=deployer))
        assert all(c["usage"] is None for c in doc["claims"])

        blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", RBAC_DOC.read_text(), re.S)]
        (role,) = [b for b in blocks if b["metadata"]["name"] == "berth-volume-stats"]
        role["metadata"]["name"] = f"berth-volume-stats-{ns}"
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role["metadata"]["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role["metadata"]["name"],
            },
        }
        cluster.client.create(from_dict(role))
        cluster.client.create(from_dict(binding))
        try:
            granted = wait_for(
                lambda: (
                    (d := json.loads(_status(cluster, name, ns, "-o", "json", kubeconfig=deployer)))["claims"][0][
                        "usage"
                    ]
                    and d
                ),
                30,
                "the optional ClusterRole to take effect",
            )
            assert not any("nodes/proxy" in n for n in granted["notes"])
        finally:
            cluster.client.delete(ClusterRoleBinding, role["metadata"]["name"])
            cluster.client.delete(ClusterRole, role["metadata"]["name"])
