"""A container that keeps Linux capabilities.

## What it does
Flags containers whose `securityContext.capabilities.drop` does not contain `ALL`, or that
add any capability other than `NET_BIND_SERVICE` (Pod Security "restricted").

## Why is this bad?
Default capabilities such as `NET_RAW` and `CHOWN` are rarely needed by training code and
widen what an attacker can do after compromising a data loader.

## Example
```yaml
securityContext:
  allowPrivilegeEscalation: false
```

Use instead:
```yaml
securityContext:
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
```

## Fix
Add `capabilities: {drop: [ALL]}`; add back only `NET_BIND_SERVICE` if really needed.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, as_list, pod_containers


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        caps = as_dict(as_dict(container.get("securityContext")).get("capabilities"))
        name = container.get("name")
        if "ALL" not in {str(c) for c in as_list(caps.get("drop"))}:
            yield Hit(
                (*path, "securityContext") if "securityContext" in container else path,
                f"container {name!r} does not drop all capabilities",
                "set securityContext.capabilities.drop: [ALL]",
            )
        extra = sorted({str(c) for c in as_list(caps.get("add"))} - {"NET_BIND_SERVICE"})
        if extra:
            yield Hit(
                (*path, "securityContext", "capabilities", "add"),
                f"container {name!r} adds capabilities {', '.join(extra)}",
                "remove them",
            )


RULE = Rule(
    id="capabilities-not-dropped",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-linter": "drop-net-raw-capability", "polaris": "insecureCapabilities, dangerousCapabilities"},
)
