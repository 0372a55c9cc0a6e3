"""A claim without `resources.requests.storage`.

## What it does
Flags PersistentVolumeClaims and volumeClaimTemplates that request no storage size, or a
size that is not a valid quantity.

## Why is this bad?
The API server rejects the claim (`spec.resources[storage]: Required value`).

## Example
```yaml
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast-ssd
```

Use instead:
```yaml
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast-ssd
  resources: {requests: {storage: 100Gi}}
```

## Fix
Request a size, e.g. `storage: 100Gi`.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._claims import CLAIM_KINDS, claim_specs
from berth.lint.rules._pod import storage_request


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for claim, _meta, spec, path in claim_specs(doc):
        size = storage_request(spec)
        if size is None or size <= 0:
            yield Hit((*path, "resources"), f"claim {claim!r} requests no valid storage size", "set requests.storage")


RULE = Rule(
    id="pvc-missing-storage-request",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=CLAIM_KINDS,
)
