"""The object does not match the OpenAPI schema of its kind.

## What it does
Validates each object strictly against the official Kubernetes OpenAPI schema of the
selected version (`--kubernetes-version`, newest installed by default) or a bundled or
`--schema-dir` CRD schema. Unknown fields, wrong types and missing required fields are
each reported at the offending field; all errors of an object are listed.

## Why is this bad?
The API server rejects the object, or (for unknown fields with client-side apply) silently
drops a field you thought was set, such as a misspelled `readOnly`.

## Example
```yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  storageClass: fast-ssd
  resources: {requests: {storage: 10Gi}}
```

Use instead:
```yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast-ssd
  resources: {requests: {storage: 10Gi}}
```

## Fix
Correct the field named in the message; `kubectl explain <kind>.<field>` shows the schema.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="schema-invalid", severity=Severity.ERROR, doc=__doc__ or "")
