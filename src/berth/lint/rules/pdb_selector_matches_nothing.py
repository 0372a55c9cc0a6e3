"""A PodDisruptionBudget whose selector matches no workload in the input.

## What it does
Flags PDBs whose selector is empty or selects the pods of no workload in the linted input
(same namespace).

## Why is this bad?
A budget that protects nothing gives false confidence: a drain evicts all training pods at
once, and an empty selector matches every pod in the namespace.

## Example
```yaml
kind: PodDisruptionBudget
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: ml-trainer}}   # pods are labelled app: trainer
```

Use instead:
```yaml
kind: PodDisruptionBudget
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: trainer}}
```

## Fix
Use the labels of the pod template you mean to protect.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pdb import PDB, covered_workloads
from berth.lint.rules._pod import as_dict


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    selector = as_dict(doc.obj.get("spec")).get("selector")
    if not selector:
        yield Hit(("spec",), "PDB has no selector", "select the training pods' labels")
    elif not covered_workloads(doc, ctx):
        yield Hit(("spec", "selector"), "selector matches no workload in the input", "use the pods' labels")


RULE = Rule(
    id="pdb-selector-matches-nothing",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=PDB,
    cross=True,
)
