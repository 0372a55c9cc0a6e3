"""Checkpoints on a cold (HDD) StorageClass while a hot class exists in the input.

## What it does
Flags the checkpoint claim of a StatefulSet (the claim template annotated
`berth.dev/checkpoint-volume: "true"`, or named `*checkpoint*`/`*ckpt*`) when its class is
cold (`berth.dev/tier: cold`, or HDD media such as EBS st1/sc1, pd-standard, Standard_LRS)
and another class in the input is hot.

## Why is this bad?
Checkpoint saves are large synchronous bursts: on HDD throughput the GPUs sit idle for
minutes per save, and a slow save widens the window in which a failure loses work.

## Example
```yaml
volumeClaimTemplates:
- metadata:
    name: ckpt
    annotations: {berth.dev/checkpoint-volume: "true"}
  spec:
    storageClassName: cold-hdd
```

Use instead:
```yaml
volumeClaimTemplates:
- metadata:
    name: ckpt
    annotations: {berth.dev/checkpoint-volume: "true"}
  spec:
    storageClassName: hot-ssd
```

## Fix
Put checkpoints on the hot class; archive them to the cold tier or object storage later.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.contract import ANNOTATION_CHECKPOINT_VOLUME
from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, claim_templates
from berth.lint.rules._storage import class_of_claim, tier


def _is_checkpoint(meta: dict[str, object]) -> bool:
    annotations = as_dict(meta.get("annotations"))
    if str(annotations.get(ANNOTATION_CHECKPOINT_VOLUME, "")).lower() == "true":
        return True
    name = str(meta.get("name", "")).lower()
    return "checkpoint" in name or "ckpt" in name


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    hot = ctx.memo("hot-classes", lambda: [sc.name for sc in ctx.of_kind("StorageClass") if tier(sc) == "hot"])
    if not hot or not any(claim_templates(doc)):
        return
    for vct, path in claim_templates(doc):
        spec = as_dict(vct.get("spec"))
        sc = class_of_claim(spec, ctx)
        if sc is None or not _is_checkpoint(as_dict(vct.get("metadata"))) or tier(sc) != "cold":
            continue
        yield Hit(
            (*path, "spec", "storageClassName") if "storageClassName" in spec else (*path, "spec"),
            f"checkpoints on cold class {sc.name!r} while hot class {hot[0]!r} exists",
            f"use storageClassName: {hot[0]}",
        )


RULE = Rule(
    id="checkpoint-on-cold-storage",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
    cross=True,
)
