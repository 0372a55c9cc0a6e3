"""An object written against an API version the target Kubernetes no longer serves.

## What it does
Flags objects whose `apiVersion` was removed at or before the Kubernetes version linted
against (`--kubernetes-version`, default the newest bundled): `extensions/v1beta1` and
`apps/v1beta1`/`v1beta2` workloads, `batch/v1beta1` CronJobs, `policy/v1beta1` PDBs,
`networking.k8s.io/v1beta1` Ingresses, `storage.k8s.io/v1beta1`, `rbac…/v1beta1`,
`autoscaling/v2beta1`/`v2beta2` and the other removed betas. The finding names the
replacement and the release that removed it; the object is not schema-validated.

## Why is this bad?
`kubectl apply` fails with "no matches for kind … in version …": the object is never
created. Found only at deploy time, often in a chart nobody touched for years.

## Example
```yaml
apiVersion: extensions/v1beta1
kind: Deployment
metadata: {name: web}
```

Use instead:
```yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}   # required since apps/v1
```

## Fix
Move to the named version (`kubectl convert` or by hand; `apps/v1` needs `spec.selector`).
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

_APPS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision")
_RBAC = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
_WEBHOOKS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_FLOW = ("FlowSchema", "PriorityLevelConfiguration")

# (apiVersion, kind) -> (replacement apiVersion or "" when the kind is gone, release that removed it)
REMOVED: dict[tuple[str, str], tuple[str, str]] = {
    **{("extensions/v1beta1", k): ("apps/v1", "1.16") for k in ("Deployment", "DaemonSet", "ReplicaSet")},
    ("extensions/v1beta1", "NetworkPolicy"): ("networking.k8s.io/v1", "1.16"),
    ("extensions/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("extensions/v1beta1", "PodSecurityPolicy"): ("", "1.25"),
    **{("apps/v1beta1", k): ("apps/v1", "1.16") for k in _APPS},
    **{("apps/v1beta2", k): ("apps/v1", "1.16") for k in _APPS},
    ("networking.k8s.io/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("networking.k8s.io/v1", "1.22"),
    ("batch/v1beta1", "CronJob"): ("batch/v1", "1.25"),
    ("batch/v2alpha1", "CronJob"): ("batch/v1", "1.21"),
    ("policy/v1beta1", "PodDisruptionBudget"): ("policy/v1", "1.25"),
    ("policy/v1beta1", "PodSecurityPolicy"): ("", "1.25"),
    **{("rbac.authorization.k8s.io/v1beta1", k): ("rbac.authorization.k8s.io/v1", "1.22") for k in _RBAC},
    **{("rbac.authorization.k8s.io/v1alpha1", k): ("rbac.authorization.k8s.io/v1", "1.22") for k in _RBAC},
    **{
        ("storage.k8s.io/v1beta1", k): ("storage.k8s.io/v1", "1.22")
        for k in ("StorageClass", "VolumeAttachment", "CSIDriver", "CSINode")
    },
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): ("storage.k8s.io/v1", "1.27"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): ("apiextensions.k8s.io/v1", "1.22"),
    **{("admissionregistration.k8s.io/v1beta1", k): ("admissionregistration.k8s.io/v1", "1.22") for k in _WEBHOOKS},
    ("apiregistration.k8s.io/v1beta1", "APIService"): ("apiregistration.k8s.io/v1", "1.22"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"): ("scheduling.k8s.io/v1", "1.22"),
    ("scheduling.k8s.io/v1alpha1", "PriorityClass"): ("scheduling.k8s.io/v1", "1.17"),
    ("coordination.k8s.io/v1beta1", "Lease"): ("coordination.k8s.io/v1", "1.22"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"): ("certificates.k8s.io/v1", "1.22"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.25"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.26"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): ("discovery.k8s.io/v1", "1.25"),
    ("events.k8s.io/v1beta1", "Event"): ("events.k8s.io/v1", "1.25"),
    ("node.k8s.io/v1beta1", "RuntimeClass"): ("node.k8s.io/v1", "1.25"),
    **{("flowcontrol.apiserver.k8s.io/v1beta1", k): ("flowcontrol.apiserver.k8s.io/v1", "1.26") for k in _FLOW},
    **{("flowcontrol.apiserver.k8s.io/v1beta2", k): ("flowcontrol.apiserver.k8s.io/v1", "1.29") for k in _FLOW},
    **{("flowcontrol.apiserver.k8s.io/v1beta3", k): ("flowcontrol.apiserver.k8s.io/v1", "1.32") for k in _FLOW},
}


def _release(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    try:
        return int(major), int(minor.split(".")[0])
    except ValueError:
        return (0, 0)


def removed(api_version: str, kind: str, kubernetes_version: str) -> tuple[str, str] | None:
    """(message, fix) when ``apiVersion``/``kind`` is no longer served by ``kubernetes_version``."""
    found = REMOVED.get((api_version, kind))
    if found is None or _release(kubernetes_version) < _release(found[1]):
        return None
    replacement, release = found
    if not replacement:
        return f"{api_version} {kind} was removed in Kubernetes {release} with no replacement", "delete the object"
    message = f"{api_version} {kind} was removed in Kubernetes {release}: use {replacement}"
    return message, f"apiVersion: {replacement}"


RULE = Rule(
    id="removed-api-version",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    equivalents={"kube-linter": "no-extensions-v1beta", "pluto": "removed"},
)
