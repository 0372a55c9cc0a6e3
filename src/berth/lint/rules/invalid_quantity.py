"""A resource request, limit or claim size that is not a Kubernetes quantity.

## What it does
Parses every container's `resources.requests`/`resources.limits` value (CPU, memory, GPUs,
any extended resource) and every claim's `resources.requests.storage` as the API server
does. `nvidia.com/gpu: ${ACCELERATOR_QUANTITY}`, `memory: 4GB` or `cpu: two` are flagged; the
schema alone accepts them (the field is int-or-string).

## Why is this bad?
The API server rejects the object ("quantities must match the regular expression …"), and
every other rule that reads the value (GPU counts, claim sizes) silently sees nothing.

## Example
```yaml
resources:
  limits: {nvidia.com/gpu: "${ACCELERATOR_QUANTITY}", memory: 16GB}
```

Use instead:
```yaml
resources:
  limits: {nvidia.com/gpu: 8, memory: 16Gi}
```

## Fix
Write a quantity (`500m`, `4`, `16Gi`, `1e3`); substitute placeholders before linting.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Path, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._claims import claim_specs
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, pod_containers
from berth.quantity import QuantityError, parse_quantity


def _problem(value: object) -> str | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return f"{value!r} is not a Kubernetes quantity"
    try:
        parse_quantity(value)
    except QuantityError as err:
        return str(err)
    return None


def _values(resources: object, base: Path) -> Iterator[Hit]:
    for which in ("requests", "limits"):
        for name, value in as_dict(as_dict(resources).get(which)).items():
            problem = _problem(value)
            if problem:
                yield Hit((*base, which, str(name)), f"{which}.{name}: {problem}", "write a quantity such as 4 or 16Gi")


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        yield from _values(container.get("resources"), (*path, "resources"))
    for _claim, _meta, spec, path in claim_specs(doc):
        yield from _values(spec.get("resources"), (*path, "resources"))


RULE = Rule(
    id="invalid-quantity",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS | {"PersistentVolumeClaim"},
)
