"""A checkpoint claim smaller than the retained checkpoints need.

## What it does
When a claim (PVC, or a claim template or its StatefulSet) carries
`berth.dev/checkpoint-size` (bytes of one checkpoint, a quantity like `40Gi`) and
`berth.dev/checkpoint-keep` (how many are retained), flags a request smaller than
`size x (keep + 1)`: the retained ones plus the one being written.

## Why is this bad?
The volume fills during a save; the save fails with ENOSPC, usually hours into training,
and a half-written checkpoint may be all that is left.

## Example
```yaml
volumeClaimTemplates:
- metadata:
    name: ckpt
    annotations: {berth.dev/checkpoint-size: 40Gi, berth.dev/checkpoint-keep: "3"}
  spec:
    resources: {requests: {storage: 100Gi}}
```

Use instead:
```yaml
    resources: {requests: {storage: 160Gi}}
```

## Fix
Request at least `size x (keep + 1)`, or keep fewer checkpoints locally.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from berth.contract import ANNOTATION_CHECKPOINT_KEEP, ANNOTATION_CHECKPOINT_SIZE
from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._claims import CLAIM_KINDS, claim_specs
from berth.lint.rules._pod import as_dict, storage_request
from berth.quantity import quantity_or_none


def _need(*sources: Mapping[str, Any]) -> float | None:
    for ann in sources:
        size = quantity_or_none(ann.get(ANNOTATION_CHECKPOINT_SIZE)) if ANNOTATION_CHECKPOINT_SIZE in ann else None
        keep = str(ann.get(ANNOTATION_CHECKPOINT_KEEP, ""))
        if size is not None and keep.isdigit():
            return size * (int(keep) + 1)
    return None


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for claim, meta, spec, path in claim_specs(doc):
        need = _need(as_dict(meta.get("annotations")), doc.annotations)
        have = storage_request(spec)
        if need is not None and have is not None and have < need:
            yield Hit(
                (*path, "resources", "requests", "storage"),
                f"claim {claim!r} holds {have / 2**30:g} GiB but the retained checkpoints need {need / 2**30:g} GiB",
                f"request at least {need / 2**30:g}Gi",
            )


RULE = Rule(
    id="checkpoint-volume-too-small",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=CLAIM_KINDS,
)
