"""Object-store credentials written as literal env values.

## What it does
Flags env vars such as `AWS_SECRET_ACCESS_KEY`, `AWS_ACCESS_KEY_ID`, `AWS_SESSION_TOKEN`,
`AZURE_STORAGE_KEY`, `*_SECRET_KEY` or `*_PASSWORD` whose value is a literal `value`
instead of a `secretKeyRef`. Switches such as `MYSQL_ALLOW_EMPTY_PASSWORD: "true"` or
`MYSQL_RANDOM_ROOT_PASSWORD: "yes"` (a boolean word, not a secret) are not flagged.

## Why is this bad?
The key is in git, in every rendered manifest, and readable by anyone who can `get` the
StatefulSet; rotating it means editing and redeploying the workload.

## Example
```yaml
env:
- name: AWS_SECRET_ACCESS_KEY
  value: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
```

Use instead:
```yaml
env:
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: archive-credentials, key: AWS_SECRET_ACCESS_KEY}
```

## Fix
Put the credential in a Secret and reference it with `valueFrom.secretKeyRef`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, env_vars, pod_containers

SECRET_NAME = re.compile(
    r"(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN|SECRET_KEY|STORAGE_KEY|CONNECTION_STRING|PASSWORD)$"
)

# Values that switch a behaviour on or off: no secret in them.
FLAG_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n"})


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        for var, var_path in env_vars(container, path):
            name = str(var.get("name", ""))
            value = var.get("value")
            if (
                SECRET_NAME.search(name.upper())
                and isinstance(value, str)
                and value
                and "$(" not in value
                and value.strip().lower() not in FLAG_VALUES
            ):
                yield Hit(
                    (*var_path, "value"),
                    f"{name} is a literal credential in the manifest",
                    "use valueFrom.secretKeyRef",
                )


RULE = Rule(
    id="literal-credentials",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-linter": "env-var-secret", "polaris": "sensitiveContainerEnvVar"},
)
