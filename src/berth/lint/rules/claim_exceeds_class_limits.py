"""A claim whose size the StorageClass cannot provision.

## What it does
Checks each PVC and volumeClaimTemplate against its class in the input: EBS size limits
(gp3 up to 64 TiB, st1/sc1 at least 125 GiB, io1/io2 at least 4 GiB) and the IOPS the class
asks for per GiB (gp3 at most 500 IOPS/GiB: 16,000 IOPS needs at least 32 GiB).

## Why is this bad?
The provisioner rejects the volume; the claim and its pod stay Pending.

## Example
```yaml
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, iops: "16000"}
---
kind: PersistentVolumeClaim
spec:
  storageClassName: fast
  resources: {requests: {storage: 10Gi}}
```

Use instead:
```yaml
kind: PersistentVolumeClaim
spec:
  storageClassName: fast
  resources: {requests: {storage: 32Gi}}
```

## Fix
Request a size inside the limits, or use a class with matching IOPS.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._claims import CLAIM_KINDS, claim_specs
from berth.lint.rules._pod import storage_request
from berth.lint.rules._storage import class_of_claim, parameters, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for claim, _meta, spec, path in claim_specs(doc):
        size = storage_request(spec)
        sc = class_of_claim(spec, ctx)
        if size is None or sc is None:
            continue
        for problem in limits.check_volume_size(provisioner(sc), parameters(sc), size):
            yield Hit(
                (*path, "resources", "requests", "storage"),
                f"claim {claim!r} on class {sc.name!r}: {problem}",
                "change the size or the class",
            )


RULE = Rule(
    id="claim-exceeds-class-limits",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=CLAIM_KINDS,
    cross=True,
)
