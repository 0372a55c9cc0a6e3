"""A pod sharing the node's network, PID or IPC namespace.

## What it does
Flags pods with `hostNetwork`, `hostPID` or `hostIPC` set to true (Pod Security "baseline").

## Why is this bad?
The pod sees and can talk to everything on the node; with hostNetwork two training jobs on
one node also collide on ports.

## Example
```yaml
spec:
  hostNetwork: true
```

Use instead:
```yaml
spec:
  hostNetwork: false
```

## Fix
Remove the host namespace; for fast interconnects use the RDMA/SR-IOV device plugins instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, pod_spec


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, base = found
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield Hit((*base, key), f"pod uses the node's namespace ({key})", f"remove {key}: true")


RULE = Rule(
    id="host-namespaces",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={
        "kube-linter": "host-network, host-pid, host-ipc",
        "polaris": "hostNetworkSet, hostPIDSet, hostIPCSet",
    },
)
