"""The file cannot be read or is not UTF-8.

## What it does
Reports a path that does not exist, is not readable, or does not decode as UTF-8.

## Why is this bad?
Nothing in it can be checked or applied.

## Example
```yaml
# berth lint missing.yaml   (no such file)
```

Use instead:
```yaml
# berth lint manifests/     (an existing file or directory)
```

## Fix
Point `berth lint` at existing, readable, UTF-8 files. `berth lint` exits with 2.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="unreadable-file", severity=Severity.ERROR, doc=__doc__ or "")
