"""A StorageClass that creates unencrypted cloud disks.

## What it does
Flags an AWS EBS StorageClass (CSI or in-tree) without `encrypted: "true"`. GCE PD and
Azure Disk always encrypt at rest and are not flagged.

## Why is this bad?
Checkpoints hold model weights and often training data; unencrypted snapshots and volumes
leak them to anyone who can read the account's EBS resources.

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3}
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
Add `encrypted: "true"` (and `kmsKeyId` for a customer-managed key). If the account enforces
EBS encryption by default, suppress with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, parameters, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    params = parameters(doc)
    if limits.is_encrypted(provisioner(doc), params) is False:
        where = ("parameters", "encrypted") if "encrypted" in params else ("parameters",)
        yield Hit(where, "EBS volumes of this class are not encrypted", 'set parameters.encrypted: "true"')


RULE = Rule(
    id="storageclass-unencrypted",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
