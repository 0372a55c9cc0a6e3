"""The file is not valid YAML or JSON.

## What it does
Reports a file the YAML parser cannot read, at the line and column where parsing stopped.
Documents before the error are still linted.

## Why is this bad?
`kubectl apply` rejects the whole file, so nothing in it is applied.

## Example
```yaml
metadata:
  labels: {app: trainer
```

Use instead:
```yaml
metadata:
  labels: {app: trainer}
```

## Fix
Correct the syntax at the reported position. `berth lint` exits with 2 for such input.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="yaml-syntax", severity=Severity.ERROR, doc=__doc__ or "")
