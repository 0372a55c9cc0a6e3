"""Shared by the cluster-command tests: a seed-like spec on the sandbox's classes, and running berth."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from berth.kube.client import Kube, RetryPolicy, Target, connect

from ..conftest import berth_process


def seed_like(
    namespace: str, *, name: str = "ml-training", replicas: int = 3, when_scaled: str = "Retain", **spec: Any
) -> dict[str, Any]:
    """The seed TensorFlow example with the sandbox's ``standard`` class (berth would create AWS classes)."""
    body: dict[str, Any] = {
        "framework": "tensorflow",
        "replicas": replicas,
        "port": 2222,
        "serviceName": "tensorflow-training",
        "image": "tensorflow/tensorflow:latest-gpu",
        "command": ["python", "/workspace/train.py"],
        "resources": {
            "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1},
            "limits": {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": 1},
        },
        "storageClasses": {"standard": {"existing": True, "tier": "hot"}},
        "volumes": {
            "model-storage": {"mountPath": "/mnt/models", "size": "1Gi", "storageClass": "standard"},
            "dataset-storage": {"mountPath": "/mnt/datasets", "size": "2Gi", "storageClass": "standard"},
        },
        "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
        "disruption": {"maxUnavailable": 1},
        "volumeRetention": {"whenScaled": when_scaled, "whenDeleted": "Retain"},
        "monitoring": {"prometheus": True},
        "backup": {"schedule": "0 2 * * *", "ttl": "720h"},
    }
    body.update(spec)
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "TrainingCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def write_spec(directory: Path, doc: dict[str, Any], file: str = "berth.yaml") -> Path:
    path = directory / file
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def berth(
    *args: str, kubeconfig: Path | None = None, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, like a user runs it, on ``kubeconfig`` when given."""
    cluster = {"KUBECONFIG": str(kubeconfig)} if kubeconfig is not None else {}
    return berth_process(*args, env={**(env or {}), **cluster}, timeout=timeout)


def admin(kubeconfig: Path, namespace: str) -> Kube:
    return connect(Target(str(kubeconfig), None, namespace), retry=RetryPolicy(budget_s=20))


def claim_names(kube: Kube, namespace: str) -> set[str]:
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    return {
        c.metadata.name
        for c in kube.client.list(PersistentVolumeClaim, namespace=namespace)
        if c.metadata and c.metadata.name and c.metadata.deletionTimestamp is None
    }


def expected_claims(name: str, ordinals: range) -> set[str]:
    return {f"{t}-{name}-{i}" for t in ("model-storage", "dataset-storage") for i in ordinals}
