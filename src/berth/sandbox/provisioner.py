"""The sandbox's volume provisioner for real nodes: ``local`` PersistentVolumes with node affinity.

kube-controller-manager's host-path provisioner makes ``hostPath`` volumes, and the kubelet never
applies a pod's ``fsGroup`` to a hostPath volume (its plugin does not implement ownership), so a
non-root trainer could not write its claim on a real node. The kubelet's ``local`` volume plugin
does: on the first mount it chowns the directory to the fsGroup, sets the setgid bit and group
rwx (``volume.NewVolumeOwnership`` in ``pkg/volume/local/local.go``), as on a real cluster's disks.

With ``berth sandbox up --kubelet`` the default StorageClass ``standard`` names
:data:`PROVISIONER` (WaitForFirstConsumer) and this process, started by PID like every other
component, serves it:

- a claim of such a class that the scheduler gave a node (annotation
  ``volume.kubernetes.io/selected-node``) gets a directory ``<root>/pvc-<claim uid>`` (root-owned,
  0755: only the kubelet's fsGroup handling makes it writable for a non-root pod) and a PV
  pre-bound to it (``claimRef``) with ``local.path`` and a ``kubernetes.io/hostname`` node
  affinity; the PV controller completes the binding;
- a Released PV it made, with reclaim policy Delete, loses its directory and is deleted.

All the machine's nodes share one filesystem, so the affinity is what the scheduler honours
(a pod follows its claim to its node, as with real local disks), not where the bytes live.

    python -m berth.sandbox.provisioner --kubeconfig <state>/kubeconfig --root <state>/volumes
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

PROVISIONER = "berth.dev/sandbox-local"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def pv_name(claim_uid: str) -> str:
    """The PV of a claim: ``pvc-<uid>``, as the in-tree provisioners name theirs."""
    return f"pvc-{claim_uid}"


def pv_manifest(claim: dict[str, Any], class_: dict[str, Any], path: Path) -> dict[str, Any]:
    """A ``local`` PV for CLAIM (a PersistentVolumeClaim as a dict) on its selected node, bound to it."""
    meta, spec = claim["metadata"], claim["spec"]
    node = meta["annotations"][SELECTED_NODE]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(meta["uid"]), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": class_.get("reclaimPolicy") or "Delete",
            "storageClassName": class_["metadata"]["name"],
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
                    ]
                }
            },
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }


class Provisioner:
    """One pass of :meth:`sync` provisions what waits and deletes what was released."""

    def __init__(self, kubeconfig: Path, root: Path) -> None:
        from lightkube import Client, KubeConfig

        self.client = Client(KubeConfig.from_file(kubeconfig), field_manager="berth-sandbox-provisioner")
        self.root = root

    def _log(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    def sync(self) -> None:
        from lightkube.codecs import from_dict
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim
        from lightkube.resources.storage_v1 import StorageClass

        listed = [c.to_dict() for c in self.client.list(StorageClass)]
        classes = {c["metadata"]["name"]: c for c in listed if c.get("provisioner") == PROVISIONER}
        if not classes:
            return
        volumes: list[dict[str, Any]] = [pv.to_dict() for pv in self.client.list(PersistentVolume)]
        existing = {pv["metadata"]["name"] for pv in volumes}
        for pvc in self.client.list(PersistentVolumeClaim, namespace="*"):
            claim: dict[str, Any] = pvc.to_dict()
            annotations = claim["metadata"].get("annotations") or {}
            class_name = claim["spec"].get("storageClassName")
            if class_name not in classes or claim["spec"].get("volumeName") or SELECTED_NODE not in annotations:
                continue
            if (claim.get("status") or {}).get("phase") not in (None, "Pending"):
                continue
            name = pv_name(claim["metadata"]["uid"])
            if name in existing:
                continue
            path = self.root / name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            try:
                self.client.create(from_dict(pv_manifest(claim, classes[class_name], path)))
            except ApiError as err:
                if err.status.code != 409:
                    raise
            self._log(f"provisioned {name} for {claim['metadata']['namespace']}/{claim['metadata']['name']}")
        for pv in volumes:
            name, spec = pv["metadata"]["name"], pv.get("spec") or {}
            if (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) != PROVISIONER:
                continue
            if spec.get("persistentVolumeReclaimPolicy") != "Delete":
                continue
            if (pv.get("status") or {}).get("phase") != "Released":
                continue
            local = Path((spec.get("local") or {}).get("path") or "/")
            if local.parent == self.root:
                shutil.rmtree(local, ignore_errors=True)
            with contextlib.suppress(ApiError):
                self.client.delete(PersistentVolume, name)
            self._log(f"deleted released {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="where the volumes' directories go")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between passes")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    provisioner = Provisioner(args.kubeconfig, args.root)
    print(f"serving StorageClasses of provisioner {PROVISIONER}, volumes under {args.root}", flush=True)
    while not stopping:
        try:
            provisioner.sync()
        except Exception as err:  # the API server restarting, a transient error: the next pass retries
            print(f"sync failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
