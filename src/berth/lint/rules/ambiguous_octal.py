"""A number written with a leading zero that YAML 1.1 and YAML 1.2 read as different values.

## What it does
Flags a plain scalar such as `0644` (octal 420 in YAML 1.1, decimal 644 in YAML 1.2) or
`0o644` (420 in YAML 1.2, the text "0o644" in YAML 1.1), wherever it is written — usually a
file mode: `defaultMode` or `items[].mode` of a secret, configMap, projected or downward-API
volume. The message says which value each reader gets and what to write.

## Why is this bad?
Kubernetes reads manifests as YAML 1.1 (kubectl, sigs.k8s.io/yaml, PyYAML): `0644` is 420,
`rw-r--r--`. A YAML 1.2 reader (ruamel.yaml, a YAML 1.2 schema in an editor, a berth spec,
which berth reads as YAML 1.2) gets 644, which as a mode is `0o1204` and not a valid file
mode; a tool that reads and re-writes the manifest that way changes the mode or breaks the
apply. `0o644` is no number at all to kubectl: the API server rejects the text.

## Example
```yaml
volumes:
  - name: config
    secret: {secretName: app, defaultMode: 0644}
```

Use instead:
```yaml
volumes:
  - name: config
    secret: {secretName: app, defaultMode: 420}  # 0644, as kubectl get -o yaml prints it
```

## Fix
Write the decimal value (420 for 0644, 256 for 0400, 493 for 0755) with the octal in a
comment; in a berth spec `0o644` also reads right.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="ambiguous-octal", severity=Severity.WARNING, doc=__doc__ or "")
