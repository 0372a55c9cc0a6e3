"""An fsGroup on large volumes without `fsGroupChangePolicy: OnRootMismatch`.

## What it does
Flags pods that set `fsGroup` and mount a volume of 100 GiB or more (claim templates, or
claims found in the input) without `fsGroupChangePolicy: OnRootMismatch`.

## Why is this bad?
With the default `Always`, the kubelet walks and chowns every file on every mount: a volume
with millions of checkpoint shards or dataset files can delay each pod start by many
minutes, and a restart after a failure pays it again.

## Example
```yaml
securityContext: {fsGroup: 1000}
```

Use instead:
```yaml
securityContext: {fsGroup: 1000, fsGroupChangePolicy: OnRootMismatch}
```

## Fix
Set `fsGroupChangePolicy: OnRootMismatch`.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import (
    WORKLOAD_KINDS,
    as_dict,
    claim_templates,
    pod_spec,
    pod_volumes,
    storage_request,
)

LARGE_BYTES = 100 * 2**30


def _sizes(doc: Document, ctx: Context) -> Iterator[float]:
    for vct, _ in claim_templates(doc):
        yield storage_request(as_dict(vct.get("spec"))) or 0.0
    for volume, _ in pod_volumes(doc):
        claim = as_dict(volume.get("persistentVolumeClaim")).get("claimName")
        pvc = ctx.named("PersistentVolumeClaim", str(claim), doc.namespace) if claim else None
        if pvc is not None:
            yield storage_request(as_dict(pvc.obj.get("spec"))) or 0.0


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, base = found
    pod_sc = as_dict(spec.get("securityContext"))
    if "fsGroup" not in pod_sc or pod_sc.get("fsGroupChangePolicy") == "OnRootMismatch":
        return
    largest = max(_sizes(doc, ctx), default=0.0)
    if largest >= LARGE_BYTES:
        yield Hit(
            (*base, "securityContext", "fsGroup"),
            f"fsGroup is applied recursively on every mount of a {largest / 2**30:g} GiB volume",
            "set securityContext.fsGroupChangePolicy: OnRootMismatch",
        )


RULE = Rule(
    id="fsgroup-change-policy",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    cross=True,
)
