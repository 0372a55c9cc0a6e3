"""A volumeMount naming a volume that does not exist.

## What it does
Flags `volumeMounts` whose `name` matches no entry of the pod's `volumes` (nor, for a
StatefulSet, of its `volumeClaimTemplates`).

## Why is this bad?
The API server rejects the pod (`volumeMounts[0].name: Not found`); for a StatefulSet the
controller keeps failing to create pods while the object itself looks fine.

## Example
```yaml
containers:
- name: trainer
  volumeMounts: [{name: checkpoints, mountPath: /ckpt}]
volumeClaimTemplates:
- metadata: {name: ckpt}
```

Use instead:
```yaml
containers:
- name: trainer
  volumeMounts: [{name: ckpt, mountPath: /ckpt}]
volumeClaimTemplates:
- metadata: {name: ckpt}
```

## Fix
Use the name of an existing volume or claim template.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, claim_templates, pod_spec, volume_mounts, volumes


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    names = {v.get("name") for v, _ in volumes(*found)}
    names |= {as_dict(vct.get("metadata")).get("name") for vct, _ in claim_templates(doc)}
    for container, mount, path in volume_mounts(*found):
        if mount.get("name") not in names:
            yield Hit(
                (*path, "name"),
                f"container {container.get('name')!r} mounts unknown volume {mount.get('name')!r}",
                "add the volume or fix the name",
            )


RULE = Rule(
    id="mount-without-volume",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
)
