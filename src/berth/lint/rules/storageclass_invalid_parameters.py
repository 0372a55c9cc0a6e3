"""StorageClass parameters the cloud provider rejects (gp3 IOPS/throughput, io2 iopsPerGB).

## What it does
Checks EBS parameters against the documented limits in `berth.providers`: gp3 IOPS
3,000-80,000 (16,000 before the 2025 increase), throughput 125-2,000 MiB/s (1,000 before),
at most 0.25 MiB/s per provisioned IOPS; io2 iopsPerGB at most 1,000 (Block Express; 500
for older io2), io1 at most 50; no iops/throughput on types that do not take them.

## Why is this bad?
Provisioning fails at the first pod start: the PVC stays Pending with a provider error, and
the training job never starts.

## Example
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, iops: "3000", throughput: "1000", encrypted: "true"}
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
```

Use instead:
```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
parameters: {type: gp3, iops: "4000", throughput: "1000", encrypted: "true"}
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
```

## Fix
Keep values inside the limits in the message (AWS EBS volume types documentation).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._storage import STORAGE_CLASS, parameters, provisioner
from berth.providers import limits


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for problem in limits.check_storage_class_params(provisioner(doc), parameters(doc)):
        yield Hit(("parameters",), problem, "stay within the EBS limits of the volume type")


RULE = Rule(
    id="storageclass-invalid-parameters",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=STORAGE_CLASS,
)
