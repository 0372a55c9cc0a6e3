"""A claim naming a StorageClass that is neither in the input nor a well-known default.

## What it does
Flags PersistentVolumeClaims and volumeClaimTemplates whose `storageClassName` is not
defined in the linted input, not a common cloud default (gp2, gp3, standard, standard-rwo,
premium-rwo, managed-csi, ...) and not listed under `known-storage-classes` in
`.berth-lint.yaml`.

## Why is this bad?
A claim for a class that does not exist stays Pending forever, and the pod with it.

## Example
```yaml
spec:
  storageClassName: fast-sdd
```

Use instead:
```yaml
spec:
  storageClassName: fast-ssd
```

## Fix
Fix the name, ship the StorageClass with the manifests, or list it in
`known-storage-classes`.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._claims import CLAIM_KINDS, claim_specs
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for claim, _meta, spec, path in claim_specs(doc):
        name = spec.get("storageClassName")
        if not name or not isinstance(name, str) or spec.get("volumeName"):
            continue  # a claim bound statically to a PV (volumeName) takes the PV's class, provisions nothing
        if ctx.storage_class(name) or name in limits.WELL_KNOWN_STORAGE_CLASSES:
            continue
        if name in ctx.known_storage_classes:
            continue
        yield Hit(
            (*path, "storageClassName"),
            f"claim {claim!r} uses StorageClass {name!r}, which is not defined in the input",
            "add the StorageClass or list it under known-storage-classes in .berth-lint.yaml",
        )


RULE = Rule(
    id="unknown-storage-class",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=CLAIM_KINDS,
    cross=True,
)
