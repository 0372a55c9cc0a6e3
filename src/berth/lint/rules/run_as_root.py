"""A container that may run as root.

## What it does
Flags containers whose effective security context has neither `runAsNonRoot: true` nor a
`runAsUser` above 0, or that set `runAsUser: 0` (Pod Security "restricted").

## Why is this bad?
A process running as root inside the container owns every file it writes to shared
volumes, and a container escape starts with root privileges.

## Example
```yaml
containers:
- name: trainer
  image: pytorch/pytorch:2.4.0
```

Use instead:
```yaml
securityContext: {runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000}
containers:
- name: trainer
  image: pytorch/pytorch:2.4.0
```

## Fix
Set `runAsNonRoot: true` and a non-zero `runAsUser` on the pod.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, containers, pod_spec
from berth.lint.rules._security import effective


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, _ = found
    for container, path in containers(*found):
        user = effective(spec, container, "runAsUser")
        non_root = effective(spec, container, "runAsNonRoot")
        name = container.get("name")
        if user == 0:
            yield Hit(
                (*path, "securityContext"), f"container {name!r} runs as root (runAsUser: 0)", "use a non-zero uid"
            )
        elif non_root is not True and not (isinstance(user, int) and user > 0):
            yield Hit(path, f"container {name!r} may run as root", "set runAsNonRoot: true and runAsUser")


RULE = Rule(
    id="run-as-root",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={
        "kube-linter": "run-as-non-root",
        "kube-score": "container-security-context-user-group-id",
        "polaris": "runAsRootAllowed",
    },
)
