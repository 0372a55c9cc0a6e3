"""A training pod whose restart policy starts the trainer again after it finished.

## What it does
Flags training Pods, Deployments and ReplicaSets whose pods restart always: a Pod with
`restartPolicy: Always` (the default), and every Deployment or ReplicaSet (they allow nothing
else). StatefulSets are `training-without-completion`'s; Jobs run to completion.

## Why is this bad?
The kubelet restarts a container that exited 0 just like one that crashed: a finished training
run starts again from its last checkpoint, forever, holding its GPUs.

## Example
```yaml
kind: Pod
spec:
  containers:
  - name: trainer
    resources: {limits: {nvidia.com/gpu: 1}}
```

Use instead:
```yaml
kind: Pod
spec:
  restartPolicy: OnFailure
  containers:
  - name: trainer
    resources: {limits: {nvidia.com/gpu: 1}}
```

## Fix
`restartPolicy: OnFailure` for a single pod, a Job for batch work, or a berth spec with
`lifecycle: {}` for a training cluster with per-pod volumes.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import is_training, pod_spec


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None or not is_training(doc):
        return
    spec, path = found
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always"):
        return
    where = (*path, "restartPolicy") if policy is not None else path
    if doc.kind == "Pod":
        yield Hit(
            where,
            "restartPolicy Always re-runs finished training: a trainer that exits 0 is started again",
            "use restartPolicy: OnFailure",
        )
    else:
        yield Hit(
            where,
            f"a {doc.kind} restarts its pods always: finished training is run again",
            "run training as a Job, or as a berth spec with `lifecycle: {}`",
        )


RULE = Rule(
    id="restart-reruns-finished-work",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"Pod", "Deployment", "ReplicaSet", "ReplicationController"}),
)
