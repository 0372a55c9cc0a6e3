"""A rank or TF_CONFIG set as a constant env value in a pod template with replicas > 1.

## What it does
Flags `TF_CONFIG`, `RANK`, `NODE_RANK`, `JOB_COMPLETION_INDEX` or `OMPI_COMM_WORLD_RANK`
given as a literal `value` in a template that runs more than one pod (`LOCAL_RANK` is the
rank within a pod and may well be constant).

## Why is this bad?
Every replica gets the same value: all pods claim to be worker 0 (the TF_CONFIG example in
the popular StatefulSet guide has exactly this bug). Training hangs at rendezvous or, worse,
several pods write the same checkpoint shard.

## Example
```yaml
env:
- name: TF_CONFIG
  value: '{"cluster": {"worker": ["t-0.t:2222", "t-1.t:2222"]}, "task": {"type": "worker", "index": 0}}'
```

Use instead:
```yaml
env:
- name: POD_INDEX
  valueFrom:
    fieldRef: {fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']"}
# and compute TF_CONFIG / RANK from POD_INDEX at container start
```

## Fix
Derive the rank per pod (downward API `apps.kubernetes.io/pod-index`, or the Job completion
index) and build TF_CONFIG at start-up; `berth render` emits such a preamble.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import RANK_ENV, WORKLOAD_KINDS, containers, env_vars, pod_spec, replicas


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    count = replicas(doc)
    if found is None or count <= 1:
        return
    for container, path in containers(*found):
        for var, var_path in env_vars(container, path):
            name = str(var.get("name"))
            value = var.get("value")
            if name in RANK_ENV and isinstance(value, str) and value and "$(" not in value:
                yield Hit(
                    (*var_path, "value"),
                    f"{name} is the same constant in all {count} replicas, so every pod gets the same rank",
                    "derive it per pod from the apps.kubernetes.io/pod-index label (downward API)",
                )


RULE = Rule(
    id="constant-rank-env",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
)
