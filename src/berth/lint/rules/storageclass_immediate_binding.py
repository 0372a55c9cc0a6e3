"""A StorageClass for zonal block disks that binds volumes immediately.

## What it does
Flags a StorageClass whose provisioner creates zonal disks (EBS, GCE PD, Azure Disk, Cinder,
vSphere) and whose `volumeBindingMode` is `Immediate` (the default when unset).

## Why is this bad?
The disk is created in some zone before the pod is scheduled; the pod must then run in that
zone, and if the GPU nodes are elsewhere it stays Pending with "volume node affinity
conflict" (the guide's "zone mismatch").

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, encrypted: "true"}
allowVolumeExpansion: true
```

Use instead:
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, encrypted: "true"}
allowVolumeExpansion: true
volumeBindingMode: WaitForFirstConsumer
```

## Fix
Set `volumeBindingMode: WaitForFirstConsumer` (the field is immutable: recreate the class).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, parameters, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    mode = doc.obj.get("volumeBindingMode", "Immediate")
    name = provisioner(doc)
    if mode == "Immediate" and limits.is_zonal_block(name, parameters(doc)):
        where = ("volumeBindingMode",) if "volumeBindingMode" in doc.obj else ()
        yield Hit(
            where,
            f"{name} disks are zonal but bind Immediately: pods can land in another zone",
            "set volumeBindingMode: WaitForFirstConsumer",
        )


RULE = Rule(
    id="storageclass-immediate-binding",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
