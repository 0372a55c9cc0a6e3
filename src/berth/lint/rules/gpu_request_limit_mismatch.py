"""A GPU request that differs from the GPU limit.

## What it does
Flags containers whose GPU resources (`nvidia.com/gpu`, MIG slices, `amd.com/gpu`, ...)
are requested without a limit, or with a request different from the limit.

## Why is this bad?
Extended resources cannot be overcommitted: the API server rejects such pods
("must be equal to ... limit"), so the StatefulSet creates no pods at all.

## Example
```yaml
resources:
  requests: {nvidia.com/gpu: 1}
  limits: {nvidia.com/gpu: 2}
```

Use instead:
```yaml
resources:
  requests: {nvidia.com/gpu: 2}
  limits: {nvidia.com/gpu: 2}
```

## Fix
Set the GPU limit, and make the request equal to it (or omit the request).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, is_gpu_resource, pod_containers, resources
from berth.quantity import quantity_or_none


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        requests, limits = resources(container)
        for name, value in requests.items():
            if not is_gpu_resource(str(name)):
                continue
            where = (*path, "resources", "requests", str(name))
            if name not in limits:
                yield Hit(where, f"{name} is requested without a limit", f"set limits.{name} equal to the request")
            elif quantity_or_none(value) != quantity_or_none(limits[name]):
                yield Hit(where, f"{name} request {value} != limit {limits[name]}", "make request and limit equal")


RULE = Rule(
    id="gpu-request-limit-mismatch",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-score": "container-resource-requests-equal-limits"},
)
