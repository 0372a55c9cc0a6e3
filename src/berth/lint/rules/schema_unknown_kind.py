"""No schema is known for the object's apiVersion and kind, so it was skipped.

## What it does
Reports objects whose type has neither a Kubernetes schema, a bundled CRD schema nor a
`--schema-dir` schema. They are not validated: skipped is not the same as valid.

## Why is this bad?
A typo in `apiVersion` or `kind` looks exactly like an unknown custom resource.

## Example
```yaml
apiVersion: apps/v1
kind: StatefullSet
metadata: {name: trainer}
```

Use instead:
```yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: trainer}
```

## Fix
Fix the type, or pass the CRD with `--schema-dir DIR` (CRD manifests or JSON schemas).
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="schema-unknown-kind", severity=Severity.INFO, doc=__doc__ or "")
