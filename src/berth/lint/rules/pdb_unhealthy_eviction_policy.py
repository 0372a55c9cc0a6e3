"""A PodDisruptionBudget without `unhealthyPodEvictionPolicy`.

## What it does
Flags PDBs that leave `unhealthyPodEvictionPolicy` at its default (`IfHealthyBudget`).

## Why is this bad?
A crash-looping or never-ready training pod counts against the budget and cannot be
evicted, so one broken pod blocks draining its node.

## Example
```yaml
kind: PodDisruptionBudget
spec:
  maxUnavailable: 1
```

Use instead:
```yaml
kind: PodDisruptionBudget
spec:
  maxUnavailable: 1
  unhealthyPodEvictionPolicy: AlwaysAllow
```

## Fix
Set `unhealthyPodEvictionPolicy: AlwaysAllow` (stable since Kubernetes 1.31).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pdb import PDB
from berth.lint.rules._pod import as_dict


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    if "unhealthyPodEvictionPolicy" not in as_dict(doc.obj.get("spec")):
        yield Hit(
            ("spec",),
            "unhealthy pods count against the budget and block drains",
            "set spec.unhealthyPodEvictionPolicy: AlwaysAllow",
        )


RULE = Rule(
    id="pdb-unhealthy-eviction-policy",
    severity=Severity.INFO,
    doc=__doc__ or "",
    check=check,
    kinds=PDB,
    equivalents={"kube-linter": "pdb-unhealthy-pod-eviction-policy"},
)
