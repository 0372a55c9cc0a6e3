"""A StatefulSet with volumeClaimTemplates but no persistentVolumeClaimRetentionPolicy.

## What it does
Flags StatefulSets that create claims without saying what happens to them on scale-down and
deletion.

## Why is this bad?
The default keeps every claim forever: after scaling 16 replicas down to 4, twelve large
volumes stay provisioned and billed, and a later scale-up silently reuses stale checkpoints.

## Example
```yaml
kind: StatefulSet
spec:
  volumeClaimTemplates:
  - metadata: {name: ckpt}
```

Use instead:
```yaml
kind: StatefulSet
spec:
  persistentVolumeClaimRetentionPolicy:
    whenScaled: Delete
    whenDeleted: Retain
  volumeClaimTemplates:
  - metadata: {name: ckpt}
```

## Fix
Set the policy explicitly (`Retain`/`Retain` is fine if you clean up with `berth gc`).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, claim_templates


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    if "persistentVolumeClaimRetentionPolicy" in spec or not any(claim_templates(doc)):
        return
    yield Hit(
        ("spec", "volumeClaimTemplates"),
        "no persistentVolumeClaimRetentionPolicy: claims are orphaned after scale-down",
        "set spec.persistentVolumeClaimRetentionPolicy (whenScaled, whenDeleted)",
    )


RULE = Rule(
    id="pvc-retention-policy-missing",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
