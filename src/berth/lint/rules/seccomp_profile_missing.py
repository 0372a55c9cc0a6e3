"""A container without a seccomp profile.

## What it does
Flags containers whose effective `seccompProfile.type` (container, else pod) is not
`RuntimeDefault` or `Localhost` (Pod Security "restricted").

## Why is this bad?
Without seccomp the container can call every syscall, including the rarely needed ones most
kernel exploits use.

## Example
```yaml
spec:
  securityContext: {runAsNonRoot: true}
```

Use instead:
```yaml
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
```

## Fix
Set `seccompProfile: {type: RuntimeDefault}` on the pod.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, containers, pod_spec
from berth.lint.rules._security import effective


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, _ = found
    for container, path in containers(*found):
        profile = as_dict(effective(spec, container, "seccompProfile")).get("type")
        if profile not in ("RuntimeDefault", "Localhost"):
            yield Hit(
                path,
                f"container {container.get('name')!r} has seccomp profile {profile or 'unset'}",
                "set securityContext.seccompProfile.type: RuntimeDefault on the pod",
            )


RULE = Rule(
    id="seccomp-profile-missing",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-score": "container-seccomp-profile"},
)
