"""spec.identity's rendering is accepted by a real kube-apiserver and by the strict schemas.

The clouds' webhooks cannot run here; what berth renders for them can be checked: ``berth plan``
runs a server-side dry run of every object (the annotated ServiceAccount, the StatefulSet with the
Azure pod label, the populate Job of an s3:// dataset that uses the role), and
kubernetes-validate checks the same objects offline in strict mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.render import render_all
from berth.spec.model import TrainingCluster

from ..render.test_pod_features import _spec
from ..render.test_render_kube_schemas import _problems
from .cluster_helpers import berth

pytestmark = pytest.mark.cluster

STORES = {
    "archive": {"url": "s3://ckpts/run1"},
    "sharedVolumes": {
        "data": {
            "claimName": "corpus",
            "mountPath": "/data",
            "size": "10Gi",
            "accessMode": "ReadWriteMany",
            "storageClass": "standard",
        }
    },
    "datasets": {"corpus": {"source": "s3://corpus-bucket/v1", "into": "data"}},
}
IDENTITIES = {
    "aws": {"identity": {"provider": "aws", "roleArn": "arn:aws:iam::111122223333:role/training-data"}, **STORES},
    "eks-pod-identity": {"identity": {"provider": "eks-pod-identity"}, **STORES},
    "gcp": {"identity": {"provider": "gcp", "serviceAccount": "trainer@proj-123.iam.gserviceaccount.com"}},
    "azure": {
        "identity": {
            "provider": "azure",
            "clientId": "6f1c3f5e-3b1d-4c8e-9d2a-1b2c3d4e5f60",
            "tenantId": "0d7e7a43-5b64-4c3c-8a32-6a8c1c2b1f00",
        }
    },
}


@pytest.mark.parametrize("provider", list(IDENTITIES))
def test_identity_passes_server_side_dry_run_and_strict_schemas(
    provider: str, tmp_path: Path, kubeconfig: Path, namespace: str
) -> None:
    doc = _spec(IDENTITIES[provider])
    doc["metadata"]["namespace"] = namespace  # existing: plan dry-runs every object, not only the Namespace
    rendered = render_all(TrainingCluster.model_validate(doc))
    assert [p for obj in rendered for p in _problems(obj)] == []
    path = tmp_path / "berth.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = berth("plan", str(path), "-o", "json", kubeconfig=kubeconfig)
    assert out.returncode == 0, out.stderr
    objects: list[dict[str, Any]] = json.loads(out.stdout)["objects"]
    kinds = {(o["kind"], o["action"], o.get("note")) for o in objects}
    assert ("ServiceAccount", "create", None) in kinds and ("StatefulSet", "create", None) in kinds, objects
    if "datasets" in IDENTITIES[provider]:
        assert ("Job", "create", None) in kinds, objects
    sa = next(o for o in rendered if o["kind"] == "ServiceAccount")
    cloud = {k: v for k, v in sa["metadata"].get("annotations", {}).items() if not k.startswith("berth.dev/")}
    assert bool(cloud) == (provider != "eks-pod-identity")
