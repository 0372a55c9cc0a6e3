"""A privileged container.

## What it does
Flags containers with `securityContext.privileged: true` (Pod Security "baseline" and
"restricted" forbid it).

## Why is this bad?
A privileged container is root on the node: it sees every device and every other pod's
volumes, including other teams' checkpoints and credentials.

## Example
```yaml
securityContext: {privileged: true}
```

Use instead:
```yaml
securityContext: {privileged: false}
```

## Fix
Remove `privileged`; GPUs are exposed through the device plugin, no privilege needed.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, pod_containers


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        if as_dict(container.get("securityContext")).get("privileged") is True:
            yield Hit(
                (*path, "securityContext", "privileged"),
                f"container {container.get('name')!r} is privileged",
                "remove privileged: true",
            )


RULE = Rule(
    id="privileged-container",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={
        "kube-linter": "privileged-container",
        "kube-score": "container-security-context-privileged",
        "polaris": "runAsPrivileged",
    },
)
