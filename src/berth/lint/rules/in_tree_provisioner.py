"""A StorageClass using a removed in-tree volume plugin name.

## What it does
Flags provisioners such as `kubernetes.io/aws-ebs` or `kubernetes.io/gce-pd` whose in-tree
plugins were removed from Kubernetes; they only work through CSI migration.

## Why is this bad?
Parameters are translated by the migration shim, and newer driver parameters (gp3
`iops`/`throughput`, tags, block sizes) may be ignored. Clusters without the CSI driver
cannot provision at all.

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: kubernetes.io/aws-ebs
parameters: {type: gp3, encrypted: "true"}
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
```

Use instead:
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, encrypted: "true"}
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
```

## Fix
Use the CSI driver name (`ebs.csi.aws.com`, `pd.csi.storage.gke.io`, `disk.csi.azure.com`).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    name = provisioner(doc)
    if name in limits.IN_TREE_PROVISIONERS:
        yield Hit(("provisioner",), f"{name} is a removed in-tree plugin", "use the CSI driver name")


RULE = Rule(
    id="in-tree-provisioner",
    severity=Severity.INFO,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
