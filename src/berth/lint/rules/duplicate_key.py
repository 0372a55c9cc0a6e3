"""A mapping has the same key twice.

## What it does
Flags the second occurrence of a key in one mapping.

## Why is this bad?
YAML libraries disagree on which value wins (many keep the last one silently), and the
API server rejects duplicate fields in strict decoding, so what you read is not what runs.

## Example
```yaml
resources:
  limits: {memory: 8Gi}
  limits: {memory: 16Gi}
```

Use instead:
```yaml
resources:
  limits: {memory: 16Gi}
```

## Fix
Keep one of the keys.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="duplicate-key", severity=Severity.ERROR, doc=__doc__ or "")
