"""A PodDisruptionBudget that allows no voluntary disruption at all.

## What it does
Flags PDBs with `maxUnavailable: 0` (or `0%`), `minAvailable: 100%`, or an integer
`minAvailable` at or above the replicas of the workloads it selects in the input.

## Why is this bad?
`kubectl drain` and cluster upgrades wait forever on such a budget: node maintenance
blocks until someone deletes the PDB by hand, usually in the middle of an incident.

## Example
```yaml
kind: PodDisruptionBudget
spec:
  minAvailable: 4          # the StatefulSet has 4 replicas
  selector: {matchLabels: {app: trainer}}
```

Use instead:
```yaml
kind: PodDisruptionBudget
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: trainer}}
```

## Fix
Allow at least one pod to be evicted (`maxUnavailable: 1`); training resumes from the
latest checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pdb import PDB, covered_workloads
from berth.lint.rules._pod import as_dict, replicas


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    spec = as_dict(doc.obj.get("spec"))
    fix = "use maxUnavailable: 1"
    max_unavailable = spec.get("maxUnavailable")
    if max_unavailable in (0, "0", "0%"):
        yield Hit(("spec", "maxUnavailable"), "maxUnavailable 0 blocks every drain and upgrade", fix)
        return
    min_available = spec.get("minAvailable")
    if min_available == "100%":
        yield Hit(("spec", "minAvailable"), "minAvailable 100% blocks every drain and upgrade", fix)
    elif isinstance(min_available, int):
        for workload in covered_workloads(doc, ctx):
            count = replicas(workload)
            if min_available >= count:
                yield Hit(
                    ("spec", "minAvailable"),
                    f"minAvailable {min_available} >= {count} replicas of {workload.kind}/{workload.name}: "
                    "no pod can ever be evicted",
                    fix,
                )


RULE = Rule(
    id="pdb-blocks-eviction",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=PDB,
    cross=True,
    equivalents={
        "kube-linter": "pdb-max-unavailable, pdb-min-available",
        "polaris": "pdbDisruptionsIsZero",
    },
)
