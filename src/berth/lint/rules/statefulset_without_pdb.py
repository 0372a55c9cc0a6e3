"""A multi-replica training StatefulSet without a PodDisruptionBudget.

## What it does
Flags StatefulSets with more than one replica that train (GPUs, a rendezvous framework, or
`app.kubernetes.io/component: training`) when no PDB in the input selects their pods.

## Why is this bad?
A node drain may evict several workers at once; every eviction restarts the whole job from
its last checkpoint, and a drain of many nodes restarts it many times.

## Example
```yaml
kind: StatefulSet
metadata: {name: trainer}
spec:
  replicas: 4
```

Use instead:
```yaml
kind: PodDisruptionBudget
metadata: {name: trainer}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: trainer}}
```

## Fix
Add a PDB with `maxUnavailable: 1` selecting the pods.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import is_training, replicas


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    if replicas(doc) > 1 and is_training(doc) and not ctx.pdbs_selecting(doc):
        yield Hit(("metadata", "name"), "no PodDisruptionBudget protects this training StatefulSet", "add a PDB")


RULE = Rule(
    id="statefulset-without-pdb",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
    cross=True,
    equivalents={"kube-score": "statefulset-has-poddisruptionbudget", "polaris": "missingPodDisruptionBudget"},
)
