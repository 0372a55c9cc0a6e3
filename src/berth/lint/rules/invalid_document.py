"""A YAML document that is not a Kubernetes object.

## What it does
Flags a document that is not a mapping, or lacks `apiVersion` or `kind`.

## Why is this bad?
The API server cannot decode it; `kubectl apply` fails on the whole file.

## Example
```yaml
- name: trainer
  image: pytorch/pytorch:2.4.0
```

Use instead:
```yaml
apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  containers: [{name: trainer, image: "pytorch/pytorch:2.4.0"}]
```

## Fix
Give every document an `apiVersion`, a `kind` and a `metadata.name`.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="invalid-document", severity=Severity.ERROR, doc=__doc__ or "")
