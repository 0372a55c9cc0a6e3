"""A pod mounting a hostPath volume.

## What it does
Flags `hostPath` volumes (Pod Security "baseline").

## Why is this bad?
Data on a node's disk is lost when the pod moves to another node (training restarts from
nothing), and a writable hostPath lets the pod modify the node.

## Example
```yaml
volumes:
- name: ckpt
  hostPath: {path: /mnt/ckpt}
```

Use instead:
```yaml
volumeClaimTemplates:
- metadata: {name: ckpt}
  spec:
    accessModes: [ReadWriteOnce]
    storageClassName: fast-ssd
    resources: {requests: {storage: 100Gi}}
```

## Fix
Use a PersistentVolumeClaim (local PVs if node-local NVMe is the point).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, pod_volumes


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for volume, path in pod_volumes(doc):
        if "hostPath" in volume:
            yield Hit((*path, "hostPath"), f"volume {volume.get('name')!r} is a hostPath", "use a PVC")


RULE = Rule(
    id="host-path-volume",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-linter": "sensitive-host-mounts"},
)
