"""A container without CPU or memory requests.

## What it does
Flags containers (not init containers) that request no `cpu` or no `memory`.

## Why is this bad?
The scheduler places the pod as if it needed nothing: training pods land on nodes that
cannot feed them, and under memory pressure they are the first (BestEffort) to be evicted,
losing all work since the last checkpoint.

## Example
```yaml
containers:
- name: trainer
  image: pytorch/pytorch:2.4.0
```

Use instead:
```yaml
containers:
- name: trainer
  image: pytorch/pytorch:2.4.0
  resources:
    requests: {cpu: "8", memory: 64Gi}
```

## Fix
Request the CPU and memory the container needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, pod_containers, resources


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc, init=False):
        requests, limits = resources(container)
        # Without a request, a limit becomes the request: that still schedules correctly.
        missing = [r for r in ("cpu", "memory") if r not in requests and r not in limits]
        if missing:
            yield Hit(
                (*path, "resources") if "resources" in container else path,
                f"container {container.get('name')!r} requests no {' or '.join(missing)}",
                "set resources.requests." + " and ".join(missing),
            )


RULE = Rule(
    id="missing-resource-requests",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={
        "kube-linter": "unset-cpu-requirements, unset-memory-requirements",
        "kube-score": "container-resources",
        "polaris": "cpuRequestsMissing, memoryRequestsMissing",
    },
)
