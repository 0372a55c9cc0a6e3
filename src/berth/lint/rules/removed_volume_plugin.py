"""A StorageClass naming an in-tree provisioner that was removed without CSI migration.

## What it does
Flags provisioners `kubernetes.io/glusterfs`, `kubernetes.io/quobyte`,
`kubernetes.io/storageos`, `kubernetes.io/scaleio`, `kubernetes.io/rbd` and
`kubernetes.io/flocker`: their in-tree plugins were deleted from Kubernetes and, unlike
`kubernetes.io/aws-ebs` or `kubernetes.io/gce-pd` (see `in-tree-provisioner`), no CSI
migration shim translates them.

## Why is this bad?
Nothing provisions these volumes: every claim of the class stays `Pending` forever and the
pods that mount it never start.

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gluster}
provisioner: kubernetes.io/glusterfs
```

Use instead:
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: ceph-block}
provisioner: rbd.csi.ceph.com
```

## Fix
Install the storage system's CSI driver and name it as the provisioner (`rbd.csi.ceph.com`,
`cephfs.csi.ceph.com`, the vendor's driver); migrate existing volumes first.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, provisioner

REMOVED_PROVISIONERS = frozenset(
    f"kubernetes.io/{name}" for name in ("glusterfs", "quobyte", "storageos", "scaleio", "rbd", "flocker")
)


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    name = provisioner(doc)
    if name in REMOVED_PROVISIONERS:
        yield Hit(
            ("provisioner",),
            f"{name} is an in-tree plugin removed from Kubernetes without CSI migration: "
            "nothing provisions its volumes",
            "use the storage system's CSI driver",
        )


RULE = Rule(
    id="removed-volume-plugin",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
