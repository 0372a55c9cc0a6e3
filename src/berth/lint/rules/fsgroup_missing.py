"""A pod that sets runAsUser and mounts persistent volumes but has no fsGroup.

## What it does
Flags workloads with persistent volumes (claims or claim templates) where a container that
mounts one runs as a fixed non-root user (`runAsUser` on it or on the pod) without
`securityContext.fsGroup` on the pod. A non-root container that mounts no claim is not
affected.

## Why is this bad?
A fresh volume's root directory belongs to root; the training process cannot write
checkpoints and fails with "permission denied" (the guide's "permission issues").

## Example
```yaml
spec:
  securityContext: {runAsUser: 1000}
  volumes:
  - name: ckpt
    persistentVolumeClaim: {claimName: ckpt}
```

Use instead:
```yaml
spec:
  securityContext: {runAsUser: 1000, fsGroup: 1000}
  volumes:
  - name: ckpt
    persistentVolumeClaim: {claimName: ckpt}
```

## Fix
Set `spec.securityContext.fsGroup` to the group the process runs with.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, as_list, claim_templates, containers, pod_spec, volumes


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, base = found
    pod_sc = as_dict(spec.get("securityContext"))
    if "fsGroup" in pod_sc:
        return
    claims = {str(as_dict(t.get("metadata")).get("name")) for t, _ in claim_templates(doc)}
    claims |= {str(v.get("name")) for v, _ in volumes(spec, base) if "persistentVolumeClaim" in v}
    users = [
        as_dict(c.get("securityContext")).get("runAsUser", pod_sc.get("runAsUser"))
        for c, _ in containers(spec, base)
        if any(str(as_dict(m).get("name")) in claims for m in as_list(c.get("volumeMounts")))
    ]
    if any(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in users):
        yield Hit(
            (*base, "securityContext") if "securityContext" in spec else base,
            "runAsUser is set but fsGroup is not: the process cannot write to the new volume",
            "set spec.securityContext.fsGroup",
        )


RULE = Rule(
    id="fsgroup-missing",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
)
