"""A container that allows privilege escalation.

## What it does
Flags containers without `securityContext.allowPrivilegeEscalation: false`
(Pod Security "restricted").

## Why is this bad?
setuid binaries in the image can gain more privileges than the process started with.

## Example
```yaml
securityContext: {runAsNonRoot: true}
```

Use instead:
```yaml
securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}
```

## Fix
Set `allowPrivilegeEscalation: false` on every container.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, pod_containers


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        sc = as_dict(container.get("securityContext"))
        if sc.get("allowPrivilegeEscalation") is not False:
            where = (*path, "securityContext") if "securityContext" in container else path
            yield Hit(
                where,
                f"container {container.get('name')!r} allows privilege escalation",
                "set securityContext.allowPrivilegeEscalation: false",
            )


RULE = Rule(
    id="privilege-escalation",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-linter": "privilege-escalation-container", "polaris": "privilegeEscalationAllowed"},
)
