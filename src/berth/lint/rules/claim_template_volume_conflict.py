"""A pod volume with the same name as a volumeClaimTemplate.

## What it does
Flags StatefulSets where `spec.template.spec.volumes` contains a volume named like one of
the `volumeClaimTemplates`.

## Why is this bad?
The claim template silently wins: the `emptyDir` or claim you wrote in `volumes` is never
used, so the data does not go where the manifest says.

## Example
```yaml
spec:
  template:
    spec:
      volumes: [{name: ckpt, emptyDir: {}}]
  volumeClaimTemplates:
  - metadata: {name: ckpt}
```

Use instead:
```yaml
spec:
  template:
    spec:
      volumes: [{name: scratch, emptyDir: {}}]
  volumeClaimTemplates:
  - metadata: {name: ckpt}
```

## Fix
Rename one of them.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, claim_templates, pod_spec, volumes


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    templates = {as_dict(vct.get("metadata")).get("name") for vct, _ in claim_templates(doc)}
    for volume, path in volumes(*found):
        if volume.get("name") in templates:
            yield Hit(
                (*path, "name"),
                f"volume {volume.get('name')!r} is shadowed by the claim template of the same name",
                "rename the volume or the claim template",
            )


RULE = Rule(
    id="claim-template-volume-conflict",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
