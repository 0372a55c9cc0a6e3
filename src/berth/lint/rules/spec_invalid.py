"""A berth spec (TrainingCluster) that does not validate, so it cannot be rendered and linted.

## What it does
`berth lint` renders berth specs (`apiVersion: berth.dev/v1alpha1`, `kind: TrainingCluster`)
and lints the objects they produce. A spec with problems is reported at the offending field
instead, and nothing is rendered from it; `berth lint` exits with 2 as `berth render` would.

## Why is this bad?
The stack cannot be generated from it at all.

## Example
```yaml
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: llm}
spec:
  framework: pytorch
  replicas: zero
```

Use instead:
```yaml
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: llm}
spec:
  framework: pytorch
  replicas: 4
```

## Fix
Correct the field named in the message; `berth init` prints a valid starting point.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="spec-invalid", severity=Severity.ERROR, doc=__doc__ or "")
