"""A training pod that checkpoints but gets too little time to finish a save when it is stopped.

## What it does
Flags training workloads that write checkpoints (`BERTH_CHECKPOINT_DIR`, or a volume mounted at
a checkpoint path) whose `terminationGracePeriodSeconds` is unset (Kubernetes' 30 s) or below 60.

## Why is this bad?
Pod deletion, a node drain and a spot reclaim all send SIGTERM, then SIGKILL after the grace
period. A multi-gigabyte save that takes longer is killed half-written: the step is lost and
the run resumes from an older one, repeating the work in between.

## Example
```yaml
kind: StatefulSet
spec:
  template:
    spec:
      containers:
      - name: trainer
        volumeMounts: [{name: ckpt, mountPath: /checkpoints}]
```

Use instead:
```yaml
kind: StatefulSet
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 600
```

## Fix
Set `terminationGracePeriodSeconds` to the time one checkpoint takes to write (its size over
the volume's throughput) plus a margin; berth renders `spec.terminationGracePeriodSeconds`
(default 600).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, env_vars, is_training, pod_containers, pod_spec

DEFAULT_GRACE = 30
MIN_GRACE = 60


def _checkpoints(doc: Document) -> bool:
    for container, path in pod_containers(doc, init=False):
        if any(var.get("name") == "BERTH_CHECKPOINT_DIR" for var, _ in env_vars(container, path)):
            return True
        for mount in container.get("volumeMounts") or []:
            where = str(mount.get("mountPath", "")).lower() if isinstance(mount, dict) else ""
            if "checkpoint" in where or "ckpt" in where:
                return True
    return False


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None or not is_training(doc) or not _checkpoints(doc):
        return
    spec, path = found
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        yield Hit(
            path,
            f"no terminationGracePeriodSeconds: a checkpoint save gets Kubernetes' {DEFAULT_GRACE}s "
            "between SIGTERM and SIGKILL",
            "set terminationGracePeriodSeconds to a save's duration plus margin (berth renders 600)",
        )
    elif isinstance(grace, int) and not isinstance(grace, bool) and grace < MIN_GRACE:
        yield Hit(
            (*path, "terminationGracePeriodSeconds"),
            f"terminationGracePeriodSeconds {grace}: too short to finish a checkpoint save before SIGKILL",
            f"raise it to at least {MIN_GRACE}, sized to a save's duration plus margin",
        )


RULE = Rule(
    id="checkpoint-no-grace-period",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
)
