"""A distributed-training StatefulSet with the default OrderedReady pod management.

## What it does
Flags a StatefulSet with more than one replica that rendezvouses (TF_CONFIG, MASTER_ADDR,
RANK/WORLD_SIZE, or `BERTH_FRAMEWORK`) without `podManagementPolicy: Parallel`.

## Why is this bad?
OrderedReady starts pod N+1 only after pod N is Ready, but a training pod is only ready
once all peers joined: the set deadlocks at pod 0, or starts minutes late on big clusters.

## Example
```yaml
kind: StatefulSet
spec:
  replicas: 4
  template:
    spec:
      containers:
      - name: trainer
        env: [{name: MASTER_ADDR, value: trainer-0.trainer}]
```

Use instead:
```yaml
kind: StatefulSet
spec:
  replicas: 4
  podManagementPolicy: Parallel
```

## Fix
Set `podManagementPolicy: Parallel` (immutable: recreate the StatefulSet).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, framework, replicas


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    if spec.get("podManagementPolicy", "OrderedReady") != "OrderedReady" or replicas(doc) <= 1:
        return
    name = framework(doc)
    if name is not None:
        where = ("spec", "podManagementPolicy") if "podManagementPolicy" in spec else ("spec",)
        yield Hit(
            where,
            f"{name} rendezvous with OrderedReady: pods wait for each other and may never start",
            "set podManagementPolicy: Parallel",
        )


RULE = Rule(
    id="ordered-ready-rendezvous",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
