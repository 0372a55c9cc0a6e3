"""A ReadWriteOnce claim mounted through `volumes` by a workload with several pods.

## What it does
Flags a workload with more than one pod (replicas, Job parallelism, a DaemonSet) whose
`volumes` reference a PersistentVolumeClaim from the input that is only `ReadWriteOnce` or
`ReadWriteOncePod`.

## Why is this bad?
All pods share that one claim. A block volume attaches to one node: the second pod on
another node fails with "Multi-Attach error" and stays in ContainerCreating.

## Example
```yaml
kind: StatefulSet
spec:
  replicas: 3
  template:
    spec:
      volumes:
      - name: ckpt
        persistentVolumeClaim: {claimName: ckpt}    # ckpt is ReadWriteOnce
```

Use instead:
```yaml
kind: StatefulSet
spec:
  replicas: 3
  volumeClaimTemplates:
  - metadata: {name: ckpt}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast-ssd
      resources: {requests: {storage: 100Gi}}
```

## Fix
Give each pod its own claim (volumeClaimTemplates) or use a ReadWriteMany class.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, as_list, pod_spec, replicas, volumes

SINGLE_NODE = frozenset({"ReadWriteOnce", "ReadWriteOncePod"})


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    count = replicas(doc)
    if found is None or count <= 1:
        return
    for volume, path in volumes(*found):
        claim = as_dict(volume.get("persistentVolumeClaim")).get("claimName")
        pvc = ctx.named("PersistentVolumeClaim", str(claim), doc.namespace) if claim else None
        if pvc is None:
            continue
        modes = {str(m) for m in as_list(as_dict(pvc.obj.get("spec")).get("accessModes"))}
        if modes and modes <= SINGLE_NODE:
            yield Hit(
                (*path, "persistentVolumeClaim", "claimName"),
                f"{count} pods share {'/'.join(sorted(modes))} claim {claim!r}: Multi-Attach errors",
                "use volumeClaimTemplates (one claim per pod) or a ReadWriteMany class",
            )


RULE = Rule(
    id="rwo-claim-multi-attach",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    cross=True,
)
