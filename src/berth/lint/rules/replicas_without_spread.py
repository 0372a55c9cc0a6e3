"""A multi-replica workload without topology spread or pod anti-affinity.

## What it does
Flags Deployments, StatefulSets and ReplicaSets with more than one replica that have neither
`topologySpreadConstraints` nor `podAntiAffinity`. Batch Jobs are not flagged: their pods
run to completion and a lost pod is retried, so packing them onto one node is harmless.

## Why is this bad?
The scheduler may pack all replicas onto one node: a single node failure or drain stops
every worker at once, and all checkpoints written to node-local storage go with it.

## Example
```yaml
spec:
  replicas: 4
  template:
    spec:
      containers: [{name: trainer, image: "pytorch/pytorch:2.4.0"}]
```

Use instead:
```yaml
spec:
  replicas: 4
  template:
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector: {matchLabels: {app: trainer}}
```

## Fix
Spread across `kubernetes.io/hostname` (and zones when storage is regional).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, pod_spec, replicas


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None or replicas(doc) <= 1:
        return
    spec, base = found
    if spec.get("topologySpreadConstraints") or as_dict(spec.get("affinity")).get("podAntiAffinity"):
        return
    yield Hit(
        base,
        f"{replicas(doc)} replicas without topologySpreadConstraints or podAntiAffinity: one node can hold them all",
        "add a topologySpreadConstraint on kubernetes.io/hostname",
    )


RULE = Rule(
    id="replicas-without-spread",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"Deployment", "StatefulSet", "ReplicaSet"}),
    equivalents={
        "kube-linter": "no-anti-affinity",
        "kube-score": "statefulset-has-host-podantiaffinity, deployment-has-host-podantiaffinity",
        "polaris": "topologySpreadConstraint",
    },
)
