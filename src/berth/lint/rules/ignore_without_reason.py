"""A `berth.dev/ignore` suppression without a reason, or naming an unknown rule.

## What it does
Checks the `berth.dev/ignore` annotation: entries are `<rule-id>: <reason>`, separated
by `;`. An entry with an empty reason or an unknown rule id is flagged (and the empty one
suppresses nothing).

## Why is this bad?
A suppression nobody can explain is a bug waiting to be re-found.

## Example
```yaml
metadata:
  name: trainer
  annotations:
    berth.dev/ignore: "run-as-root:"
```

Use instead:
```yaml
metadata:
  name: trainer
  annotations:
    berth.dev/ignore: "run-as-root: the NCCL image needs root for IPC setup"
```

## Fix
Write why the rule does not apply after the colon.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="ignore-without-reason", severity=Severity.WARNING, doc=__doc__ or "")
