"""Checkpoints written to an emptyDir without an ephemeral-storage limit.

## What it does
Flags an `emptyDir` (not `medium: Memory`) mounted where checkpoints go (a mount path
containing `checkpoint`/`ckpt`, or the directory `BERTH_CHECKPOINT_DIR` points into) when
neither `emptyDir.sizeLimit` nor the container's `limits.ephemeral-storage` is set.

## Why is this bad?
Checkpoints fill the node's root disk; the kubelet then evicts pods under disk pressure,
often the training pods themselves, and the emptyDir with the checkpoints is gone.

## Example
```yaml
containers:
- name: trainer
  volumeMounts: [{name: scratch, mountPath: /checkpoints}]
volumes:
- name: scratch
  emptyDir: {}
```

Use instead:
```yaml
containers:
- name: trainer
  volumeMounts: [{name: scratch, mountPath: /checkpoints}]
  resources:
    limits: {ephemeral-storage: 200Gi}
volumes:
- name: scratch
  emptyDir: {sizeLimit: 200Gi}
```

## Fix
Bound the emptyDir (`sizeLimit`, `limits.ephemeral-storage`), or better, put checkpoints on
a persistent volume.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, env_vars, pod_spec, resources, volume_mounts, volumes


def _is_checkpoint_mount(container: dict[str, object], mount_path: str) -> bool:
    lowered = mount_path.lower()
    if "checkpoint" in lowered or "ckpt" in lowered:
        return True
    for var, _ in env_vars(container, ()):
        value = str(var.get("value", ""))
        if var.get("name") == "BERTH_CHECKPOINT_DIR" and (value + "/").startswith(mount_path.rstrip("/") + "/"):
            return True
    return False


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    unbounded = {}
    for volume, path in volumes(*found):
        if "emptyDir" not in volume:
            continue
        empty_dir = as_dict(volume.get("emptyDir"))
        if empty_dir.get("medium") != "Memory" and "sizeLimit" not in empty_dir:
            unbounded[volume.get("name")] = path
    for container, mount, mount_path in volume_mounts(*found):
        if mount.get("name") not in unbounded or "ephemeral-storage" in resources(container)[1]:
            continue
        if _is_checkpoint_mount(container, str(mount.get("mountPath", ""))):
            yield Hit(
                mount_path,
                f"checkpoints go to emptyDir {mount.get('name')!r} with no size bound: disk pressure evicts the pod",
                "set emptyDir.sizeLimit and limits.ephemeral-storage, or use a PVC",
            )


RULE = Rule(
    id="checkpoint-emptydir-no-limit",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-score": "container-ephemeral-storage-request-and-limit"},
)
