"""A StatefulSet that trains with nothing to notice that training finished.

## What it does
Flags hand-written training StatefulSets (GPUs, a framework's rendezvous env, or berth's
training label) whose trainer does not run under `berth run`'s supervisor (the container env has
no `BERTH_LIFECYCLE`). StatefulSets berth renders (`app.kubernetes.io/managed-by: berth`) are
left to their spec: `berth explain` says what a spec without `lifecycle` gives up.

## Why is this bad?
A StatefulSet's pods always restart: when the trainer exits 0 the kubelet starts it again,
forever, re-running finished work and holding the GPUs. When one rank crashes the others
hang in their collectives until a timeout, and nothing restarts them together.

## Example
```yaml
kind: StatefulSet
spec:
  template:
    spec:
      containers:
      - name: trainer
        command: [torchrun, train.py]
        resources: {limits: {nvidia.com/gpu: 8}}
```

Use instead: the berth spec's `lifecycle: {onComplete: scaleToZero, maxRestarts: 3}`, which
renders the trainer under `berth run`'s supervisor:
```yaml
      containers:
      - name: trainer
        command: [/bin/sh, -c, "<rendezvous preamble>; exec berth run -- \"$@\"", --, torchrun, train.py]
        env: [{name: BERTH_LIFECYCLE, value: scaleToZero}]
```

## Fix
Add `lifecycle: {}` to the berth spec (docs/lifecycle.md): completion is recorded, the
StatefulSet is scaled to zero with its claims kept, failures restart the whole gang. The
image needs berth installed; without it the pod keeps the preamble-only behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.contract import LABEL_MANAGED_BY, MANAGED_BY
from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, is_training, pod_containers, supervised


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    labels = as_dict(doc.metadata.get("labels"))
    if (
        labels.get(LABEL_MANAGED_BY) == MANAGED_BY
        or not is_training(doc)
        or any(supervised(c, p) for c, p in pod_containers(doc, init=False))
    ):
        return
    first = next(pod_containers(doc, init=False), None)
    if first is None:
        return
    yield Hit(
        first[1],
        "trains with no completion handling: a trainer that exits 0 is restarted, re-running finished work "
        "and holding its GPUs; a crashed rank is not restarted with its peers",
        "add `lifecycle: {}` to the berth spec (berth run supervises the trainer, docs/lifecycle.md)",
    )


RULE = Rule(
    id="training-without-completion",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
