"""A rendezvous StatefulSet's headless Service that hides not-ready pods from DNS.

## What it does
Flags the headless Service of a multi-replica StatefulSet that rendezvouses when the
Service lacks `publishNotReadyAddresses: true`.

## Why is this bad?
DNS records of pods appear only once they are Ready, but a training pod becomes Ready only
after rendezvous: workers cannot resolve `trainer-0.trainer` and wait forever whenever the
pods have readiness probes.

## Example
```yaml
kind: Service
spec:
  clusterIP: None
  selector: {app: trainer}
```

Use instead:
```yaml
kind: Service
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: trainer}
```

## Fix
Set `publishNotReadyAddresses: true` on the headless Service.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context, same_namespace
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, framework, replicas


def _by_service(ctx: Context) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for sts in ctx.of_kind("StatefulSet"):
        out.setdefault(str(as_dict(sts.obj.get("spec")).get("serviceName", "")), []).append(sts)
    return out


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    if spec.get("clusterIP") != "None" or spec.get("publishNotReadyAddresses") is True:
        return
    by_service = ctx.memo("statefulsets-by-service", lambda: _by_service(ctx))
    for sts in by_service.get(doc.name, []):
        if not same_namespace(sts.namespace, doc.namespace):
            continue
        if replicas(sts) > 1 and framework(sts) is not None:
            yield Hit(
                ("spec",),
                f"peers of StatefulSet {sts.name!r} cannot resolve each other before they are Ready",
                "set spec.publishNotReadyAddresses: true",
            )
            return


RULE = Rule(
    id="headless-service-not-ready-addresses",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"Service"}),
    cross=True,
)
