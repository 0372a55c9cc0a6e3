"""A shared dataset claim that is writable or not mounted read-only.

## What it does
For workloads with several pods, flags a claim shared through `volumes` that is a dataset
(access mode `ReadOnlyMany`, or named `*dataset*`) when a container mounts it without
`readOnly: true`, or when the dataset claim allows writes (`ReadWriteMany`).

## Why is this bad?
One buggy preprocessing step in one replica corrupts the data every other replica reads;
and a ReadOnlyMany volume mounted read-write fails to mount on many drivers.

## Example
```yaml
volumeMounts:
- name: dataset
  mountPath: /data
volumes:
- name: dataset
  persistentVolumeClaim: {claimName: shared-dataset}
```

Use instead:
```yaml
volumeMounts:
- name: dataset
  mountPath: /data
  readOnly: true
volumes:
- name: dataset
  persistentVolumeClaim: {claimName: shared-dataset, readOnly: true}
```

## Fix
Mount datasets with `readOnly: true` and give the claim `ReadOnlyMany`.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, as_list, pod_spec, replicas, volume_mounts, volumes


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None or replicas(doc) <= 1:
        return
    for volume, path in volumes(*found):
        source = as_dict(volume.get("persistentVolumeClaim"))
        claim = str(source.get("claimName", ""))
        if not claim:
            continue
        pvc = ctx.named("PersistentVolumeClaim", claim, doc.namespace)
        modes = {str(m) for m in as_list(as_dict(pvc.obj.get("spec")).get("accessModes"))} if pvc else set()
        if "ReadOnlyMany" not in modes and "dataset" not in claim.lower():
            continue
        if "ReadWriteMany" in modes and "ReadOnlyMany" not in modes:
            yield Hit(
                (*path, "persistentVolumeClaim", "claimName"),
                f"dataset claim {claim!r} is ReadWriteMany: any replica can modify the shared data",
                "use accessModes: [ReadOnlyMany]",
            )
        if source.get("readOnly") is True:
            continue
        for container, mount, mount_path in volume_mounts(*found):
            if mount.get("name") == volume.get("name") and mount.get("readOnly") is not True:
                yield Hit(
                    mount_path,
                    f"container {container.get('name')!r} mounts shared dataset {claim!r} writable",
                    "set readOnly: true on the volumeMount",
                )


RULE = Rule(
    id="shared-dataset-writable",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    cross=True,
)
