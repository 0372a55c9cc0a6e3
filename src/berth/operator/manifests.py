"""Install objects for the operator: Namespace, CRDs, ServiceAccount, least-privilege RBAC, Deployment.

The ClusterRole lists exactly what one reconcile (``kube.up``), ``status`` and the delete finalizer
(``kube.down``) touch, what kopf needs (Events, the CR's status and finalizers), and a Role for
the leader-election Lease in the operator's namespace. docs/rbac.md explains each rule;
tests/cluster/test_operator_rbac.py runs the operator under this ServiceAccount.
"""

from __future__ import annotations

from typing import Any

from berth.contract import API_GROUP, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, PART_OF
from berth.operator.crd import PLURAL, crd

NAME = "berth-operator"
_LABELS = {LABEL_NAME: NAME, LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: "berth"}
_WRITE = ["get", "list", "watch", "create", "patch", "update", "delete"]

RULES: list[dict[str, Any]] = [
    # The custom resource: watch, finalizers and kopf's progress annotations, status.
    {"apiGroups": [API_GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch", "update"]},
    {"apiGroups": [API_GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch", "update"]},
    # What berth renders (render/): the apply path, and `down` on delete.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts", "services", "configmaps", "persistentvolumeclaims"],
        "verbs": _WRITE,
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": _WRITE},
    {"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": ["get", "list"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": _WRITE},  # spec.datasets' populate Job
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": _WRITE},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _WRITE},
    {
        "apiGroups": ["monitoring.coreos.com"],
        "resources": ["prometheusrules", "servicemonitors", "podmonitors"],
        "verbs": _WRITE,
    },
    {"apiGroups": ["velero.io"], "resources": ["schedules"], "verbs": _WRITE},
    # The delete finalizer's last backup (spec.backup): one request, then its status; never updated or deleted.
    {"apiGroups": ["velero.io"], "resources": ["backups"], "verbs": ["get", "create"]},
    {"apiGroups": ["snapshot.storage.k8s.io"], "resources": ["volumesnapshotclasses"], "verbs": _WRITE},
    # kopf: Events on the CR; which resources and namespaces exist (it re-scans when CRDs or namespaces come and go).
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
# Leader election (berth.operator.leader): the Lease in the operator's own namespace only.
LEASE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
]


def manifests(
    *, namespace: str = "berth-system", image: str = "ghcr.io/berth-dev/berth:latest", replicas: int = 2
) -> list[dict[str, Any]]:
    """Every object ``berth operator install`` applies, in apply order."""
    meta = {"name": NAME, "namespace": namespace, "labels": dict(_LABELS)}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(_LABELS)}},
        crd(),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": dict(_LABELS)},
            "rules": RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": dict(_LABELS)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": LEASE_RULES},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {LABEL_NAME: NAME}},
                "template": {
                    "metadata": {"labels": dict(_LABELS)},
                    "spec": {
                        "serviceAccountName": NAME,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "operator",
                                "image": image,
                                "args": [
                                    "berth",
                                    "operator",
                                    "run",
                                    "--liveness",
                                    "http://0.0.0.0:8080/healthz",
                                ],
                                "ports": [{"name": "health", "containerPort": 8080}],
                                "livenessProbe": {
                                    "httpGet": {"path": "/healthz", "port": "health"},
                                    "periodSeconds": 20,
                                },
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "256Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
    ]
