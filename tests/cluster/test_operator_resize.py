"""A TrainingCluster's volume ``size`` edited: the operator grows claims and templates like `berth resize`.

The operator runs as a process on the sandbox (kwok nodes); the classes are the sandbox
controller-manager's host-path ones from tests/cluster/test_resize.py (one expandable, one not).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from .cluster_helpers import admin, claim_names
from .test_operator import eventually, get, operator  # noqa: F401 (the fixture)
from .test_operator_crd import kubectl_run
from .test_resize import _pods, _spec, classes  # noqa: F401 (the fixture)

pytestmark = pytest.mark.cluster


def test_operator_grows_claims_and_refuses_shrink(
    operator: Path,  # noqa: F811
    kubectl: Path,
    kubeconfig: Path,
    namespace: str,
    kube_client: Any,
    classes: tuple[str, str],  # noqa: F811
) -> None:
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    grow, fixed = classes
    doc = _spec(namespace, grow, fixed, "1Gi", "2Gi")
    done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode == 0, done.stderr
    model = {f"model-storage-ml-training-{i}" for i in range(2)}
    kube = admin(kubeconfig, namespace)
    eventually(lambda: model <= claim_names(kube, namespace), "the claims", 90)
    eventually(lambda: len(_pods(kube_client, namespace)) == 2, "two pods", 60)
    pods = _pods(kube_client, namespace)
    old_uid = kube_client.get(StatefulSet, "ml-training", namespace=namespace).metadata.uid

    def tc() -> dict[str, Any]:
        return get(kubectl, kubeconfig, "tc", "ml-training", "-n", namespace) or {}

    def condition(kind: str) -> dict[str, Any]:
        return next((c for c in (tc().get("status") or {}).get("conditions", []) if c["type"] == kind), {})

    def events(reason: str) -> list[dict[str, Any]]:
        found = get(
            kubectl, kubeconfig, "events", "-n", namespace, "--field-selector", "involvedObject.name=ml-training"
        )
        return [e for e in (found or {}).get("items", []) if e.get("reason") == reason]

    def size(kind: str, name: str) -> str:
        from lightkube import ApiError

        if kind == "claim":
            pvc = kube_client.get(PersistentVolumeClaim, name, namespace=namespace)
            return str(pvc.spec.resources.requests["storage"])
        try:
            sts = kube_client.get(StatefulSet, "ml-training", namespace=namespace)
        except ApiError as err:  # between the orphaning delete and the re-create with the new template
            if err.status.code == 404:
                return "absent"
            raise
        return next(
            str(t.spec.resources.requests["storage"]) for t in sts.spec.volumeClaimTemplates if t.metadata.name == name
        )

    # Grow model-storage 1Gi → 3Gi by editing the CR.
    bigger = {"spec": {"volumes": {"model-storage": {"size": "3Gi"}}}}
    patched = kubectl_run(
        kubectl, kubeconfig, "patch", "tc", "ml-training", "-n", namespace, "--type=merge", "-p", json.dumps(bigger)
    )
    assert patched.returncode == 0, patched.stderr
    eventually(lambda: all(size("claim", c) == "3Gi" for c in model), "claims grown to 3Gi", 60)
    eventually(lambda: size("template", "model-storage") == "3Gi", "the StatefulSet's template at 3Gi", 60)
    assert kube_client.get(StatefulSet, "ml-training", namespace=namespace).metadata.uid != old_uid
    assert all(size("claim", f"dataset-storage-ml-training-{i}") == "2Gi" for i in range(2))
    assert _pods(kube_client, namespace) == pods  # orphaned and adopted, never deleted
    event = eventually(lambda: events("VolumesResized"), "a VolumesResized Event", 30)[0]
    assert "model-storage 1Gi → 3Gi (pods kept)" in event["message"], event
    assert "claim model-storage-ml-training-0: 1Gi → 3Gi" in event["message"], event
    # The status says so until each claim's capacity catches up (the host-path class never does).
    progressing = eventually(
        lambda: (c := condition("Progressing")).get("reason") == "VolumesResizing" and c, "Progressing", 30
    )
    assert progressing["status"] == "True"
    assert "model-storage-ml-training-0" in progressing["message"], progressing
    assert condition("Degraded").get("status") == "False"

    # Shrink: refused with a located Degraded condition and a Warning Event; nothing written.
    smaller = {"spec": {"volumes": {"model-storage": {"size": "2Gi"}}}}
    patched = kubectl_run(
        kubectl, kubeconfig, "patch", "tc", "ml-training", "-n", namespace, "--type=merge", "-p", json.dumps(smaller)
    )
    assert patched.returncode == 0, patched.stderr
    degraded = eventually(
        lambda: (c := condition("Degraded")).get("reason") == "ResizeRefused" and c, "Degraded ResizeRefused", 30
    )
    assert degraded["status"] == "True"
    assert (
        "spec.volumes.model-storage.size: cannot shrink volume 'model-storage' from 3Gi to 2Gi" in degraded["message"]
    )
    warning = eventually(lambda: events("ResizeRefused"), "a ResizeRefused Event", 30)[0]
    assert warning["type"] == "Warning" and "cannot shrink" in warning["message"], warning
    assert all(size("claim", c) == "3Gi" for c in model)
    assert size("template", "model-storage") == "3Gi"
    assert _pods(kube_client, namespace) == pods
