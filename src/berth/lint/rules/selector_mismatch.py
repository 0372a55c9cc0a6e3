"""A workload selector that does not match its own pod template labels.

## What it does
Flags a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job whose `spec.selector` does not
select the labels of `spec.template.metadata.labels`.

## Why is this bad?
The API server rejects the object ("selector does not match template labels"); with
`matchExpressions` it may instead adopt or fight over pods of another workload.

## Example
```yaml
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: training}}
```

Use instead:
```yaml
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer}}
```

## Fix
Use the same labels in the selector and the template (the selector is immutable).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import TEMPLATE_KINDS, as_dict, pod_labels, selector_matches


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    selector = spec.get("selector")
    if selector is None or doc.kind == "ReplicationController":
        return
    if not selector_matches(selector, pod_labels(doc)):
        yield Hit(("spec", "selector"), "selector does not match the pod template labels", "align the labels")


RULE = Rule(
    id="selector-mismatch",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=TEMPLATE_KINDS,
    equivalents={
        "kube-linter": "mismatching-selector",
        "kube-score": "statefulset-pod-selector-labels-match-template-metadata-labels, "
        "deployment-pod-selector-labels-match-template-metadata-labels",
    },
)
