"""A GPU container without CPU and memory limits.

## What it does
Flags containers that use GPUs but set no `limits.memory` or no `limits.cpu`.

## Why is this bad?
GPU nodes are expensive and shared by data loaders, NCCL and checkpoint writers. A
container without memory limit can OOM the node and take down the other GPU jobs on it;
without CPU limits one job's data loaders starve another's.

## Example
```yaml
resources:
  limits: {nvidia.com/gpu: 8}
```

Use instead:
```yaml
resources:
  requests: {cpu: "32", memory: 256Gi}
  limits: {nvidia.com/gpu: 8, cpu: "48", memory: 320Gi}
```

## Fix
Set memory and CPU limits sized for the data loaders and checkpoint buffers.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, gpu_count, pod_containers, resources


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        if gpu_count(container) <= 0:
            continue
        _requests, limits = resources(container)
        missing = [r for r in ("cpu", "memory") if r not in limits]
        if missing:
            yield Hit(
                (*path, "resources"),
                f"GPU container {container.get('name')!r} has no {' or '.join(missing)} limit",
                "set limits for " + " and ".join(missing),
            )


RULE = Rule(
    id="gpu-without-limits",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={
        "kube-linter": "unset-cpu-requirements, unset-memory-requirements",
        "polaris": "cpuLimitsMissing, memoryLimitsMissing",
    },
)
