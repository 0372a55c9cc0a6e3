"""A StorageClass that does not allow volume expansion.

## What it does
Flags a dynamically provisioning StorageClass without `allowVolumeExpansion: true`
(node-local provisioners such as `rancher.io/local-path`, which cannot expand, are skipped).

## Why is this bad?
Checkpoints and datasets grow. Without expansion a full volume can only be fixed by
creating a new claim and copying the data, with the training job stopped.

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
volumeBindingMode: WaitForFirstConsumer
parameters: {encrypted: "true"}
```

Use instead:
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
volumeBindingMode: WaitForFirstConsumer
parameters: {encrypted: "true"}
allowVolumeExpansion: true
```

## Fix
Set `allowVolumeExpansion: true` (supported by all major CSI block and file drivers).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    if provisioner(doc) in limits.NON_EXPANDABLE_PROVISIONERS or doc.obj.get("allowVolumeExpansion") is True:
        return
    where = ("allowVolumeExpansion",) if "allowVolumeExpansion" in doc.obj else ()
    yield Hit(where, "volumes of this class cannot be grown in place", "set allowVolumeExpansion: true")


RULE = Rule(
    id="storageclass-no-expansion",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
