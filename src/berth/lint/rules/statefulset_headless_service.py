"""A StatefulSet whose serviceName has no matching headless Service in the input.

## What it does
Flags a StatefulSet without `serviceName`, whose Service is missing from the input, or whose
Service is not headless (`clusterIP: None`) or does not select the StatefulSet's pods.

## Why is this bad?
Pod DNS names (`trainer-0.trainer.ns.svc`) only exist through a headless Service that
selects the pods. Without it, distributed training cannot find its peers.

## Example
```yaml
apiVersion: v1
kind: Service
metadata: {name: trainer}
spec:
  selector: {app: trainer}
  ports: [{port: 2222}]
```

Use instead:
```yaml
apiVersion: v1
kind: Service
metadata: {name: trainer}
spec:
  clusterIP: None
  selector: {app: trainer}
  ports: [{port: 2222}]
```

## Fix
Ship a Service named like `spec.serviceName` with `clusterIP: None` and the pods' labels
as its selector.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, pod_labels


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    name = spec.get("serviceName")
    if not name:
        yield Hit(("spec",), "StatefulSet has no serviceName: pods get no stable DNS names", "set spec.serviceName")
        return
    service = ctx.named("Service", str(name), doc.namespace)
    where = ("spec", "serviceName")
    if service is None:
        yield Hit(where, f"Service {name!r} is not in the input", f"add a headless Service named {name}")
        return
    service_spec = as_dict(service.obj.get("spec"))
    if service_spec.get("clusterIP") != "None":
        yield Hit(where, f"Service {name!r} is not headless", "set clusterIP: None on the Service")
    selector = as_dict(service_spec.get("selector"))
    labels = pod_labels(doc)
    if selector and any(labels.get(str(k)) != str(v) for k, v in selector.items()):
        yield Hit(where, f"Service {name!r} does not select this StatefulSet's pods", "match the pod labels")


RULE = Rule(
    id="statefulset-headless-service",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
    cross=True,
    equivalents={"kube-score": "statefulset-has-servicename", "kube-linter": "dangling-service"},
)
