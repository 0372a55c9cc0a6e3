"""A volumeClaimTemplate without storageClassName.

## What it does
Flags StatefulSet claim templates that do not name a StorageClass.

## Why is this bad?
The claim gets whatever the cluster's default class is: a slow HDD class in one cluster, a
fast SSD in another, or nothing (Pending forever) where no default exists. Checkpoint
performance then depends on the cluster, not on the manifest.

## Example
```yaml
volumeClaimTemplates:
- metadata: {name: ckpt}
  spec:
    accessModes: [ReadWriteOnce]
    resources: {requests: {storage: 100Gi}}
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
Name the class explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, claim_templates


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for vct, path in claim_templates(doc):
        if "storageClassName" not in as_dict(vct.get("spec")):
            name = as_dict(vct.get("metadata")).get("name", "?")
            yield Hit(
                (*path, "spec"), f"claim template {name!r} uses the cluster default class", "set storageClassName"
            )


RULE = Rule(
    id="claim-template-no-storage-class",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
