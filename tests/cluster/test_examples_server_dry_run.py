"""Every example's rendered objects are accepted by a real kube-apiserver (server-side dry-run via `berth plan`).

The schema tests (tests/render) check the OpenAPI schemas offline; this is the other half of
"validated against its schemas and a real API server": admission, defaulting and the server's
own validation of names, quantities and immutable shapes, with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.render import render_all
from berth.spec.load import load_spec

from .cluster_helpers import berth

pytestmark = pytest.mark.cluster

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
CRD_GROUPS = ("monitoring.coreos.com/", "velero.io/", "snapshot.storage.k8s.io/")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_server_side_dry_run(example: Path, kubeconfig: Path, namespace: str) -> None:
    # In an existing namespace: in a new one plan dry-runs only the Namespace and notes that the
    # rest waits for it ("created first"), so the server would never see them.
    out = berth("plan", str(example), "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    spec = load_spec(example)
    spec.metadata.namespace = namespace
    rendered = render_all(spec)
    assert [(o["kind"], o["name"]) for o in plan["objects"]] == [(o["kind"], o["metadata"]["name"]) for o in rendered]
    for obj, planned in zip(rendered, plan["objects"], strict=True):
        # The sandbox serves no Prometheus Operator, Velero or snapshot CRDs: those are skipped, said so.
        if obj["apiVersion"].startswith(CRD_GROUPS):
            assert planned["action"] == "skipped", planned
        elif obj["kind"] == "Namespace":  # made bare by the fixture: berth adds its labels
            assert planned["action"] == "update", planned
        else:
            assert (planned["action"], planned.get("note")) == ("create", None), planned
