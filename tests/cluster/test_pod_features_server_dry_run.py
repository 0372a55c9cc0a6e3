"""Each pod feature, alone and together with the overlay, is accepted by a real kube-apiserver.

The offline half (strict schemas) is tests/render/test_pod_features.py; here ``berth plan`` runs a
server-side dry run of every rendered object: the API server's own validation of containers,
probes, sidecars (restartPolicy Always on an init container), volume sources and tolerations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..render.test_pod_features import FEATURES, _spec
from .cluster_helpers import berth

pytestmark = pytest.mark.cluster


def _plan(doc: dict[str, Any], tmp_path: Path, kubeconfig: Path) -> list[dict[str, Any]]:
    path = tmp_path / "berth.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = berth("plan", str(path), "-o", "json", kubeconfig=kubeconfig)
    assert out.returncode == 0, out.stderr
    objects: list[dict[str, Any]] = json.loads(out.stdout)["objects"]
    return objects


@pytest.mark.parametrize("fields", [f[1] for f in FEATURES], ids=[f[0] for f in FEATURES])
def test_feature_passes_server_side_dry_run(
    fields: dict[str, Any], tmp_path: Path, kubeconfig: Path, namespace: str
) -> None:
    # An existing namespace: in a new one plan dry-runs only the Namespace ("created first").
    doc = _spec(fields)
    doc["metadata"]["namespace"] = namespace
    objects = _plan(doc, tmp_path, kubeconfig)
    statefulset = [o for o in objects if o["kind"] == "StatefulSet"]
    assert [(o["action"], o.get("note")) for o in statefulset] == [("create", None)], objects


def test_the_dry_run_is_real_a_bad_pod_is_refused(tmp_path: Path, kubeconfig: Path, namespace: str) -> None:
    """What the schema allows but only the API server refuses: a volume name that is not a DNS label."""
    doc = _spec({"podTemplate": {"spec": {"volumes": [{"name": "Bad_Name", "emptyDir": {}}]}}})
    doc["metadata"]["namespace"] = namespace
    path = tmp_path / "berth.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = berth("plan", str(path), "-o", "json", kubeconfig=kubeconfig)
    assert out.returncode != 0, out.stdout
    assert "Bad_Name" in out.stdout + out.stderr
