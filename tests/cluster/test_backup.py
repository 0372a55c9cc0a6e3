"""berth backup / backups / restore against the sandbox's kube-apiserver with Velero's CRDs installed.

The CRDs (tests/cluster/data/velero-crds.yaml) are Velero's own, written from its Go module by
tools/velero/test_crds.py, so the API server validates every Backup and Restore berth writes
(berth creates them with fieldValidation=Strict: an unknown field fails). A real Velero server
backs up and restores a cluster in test_velero_server.py; the tests here play Velero's controller
(writing ``status`` the way Velero does, each such test says so) only for the states a real
server cannot be made to show on demand: a backup seen InProgress with partial progress (a real
one finishes within berth's poll), a restore that ends Failed with a failureReason.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import BERTH
from ..runtime.conftest import Seaweed
from .cluster_helpers import berth, seed_like, write_spec
from .test_restore_archive import weed

__all__ = ["weed"]  # the SeaweedFS fixture of the archive tests

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).parent / "data" / "velero-crds.yaml"
API = "/apis/velero.io/v1"


def test_backup_without_velero_says_what_to_install(kubeconfig: Path, namespace: str) -> None:
    """Runs before the CRDs are installed (module order): one message naming the missing CRDs."""
    done = berth("backup", "ml-training", "-n", namespace, kubeconfig=kubeconfig)
    assert done.returncode == 1, done.stderr
    assert "Velero is not installed" in done.stderr and "backups.velero.io" in done.stderr
    assert "velero install" in done.stderr and "Traceback" not in done.stderr
    restore = berth("restore", "ml-training", "--from", "b", "-n", namespace, kubeconfig=kubeconfig)
    assert restore.returncode == 1 and "restores.velero.io" in restore.stderr


@pytest.fixture(scope="module")
def velero(kube_client: Any, kubeconfig: Path) -> Iterator[str]:
    """Velero's Backup/Restore CRDs and a namespace for Velero's objects; both removed afterwards."""
    from lightkube.codecs import from_dict
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
    from lightkube.resources.core_v1 import Namespace

    crds = yaml.safe_load(CRDS.read_text())["items"]
    for crd in crds:
        kube_client.create(from_dict(crd))
    deadline = time.monotonic() + 30
    for crd in crds:
        while True:
            got = kube_client.get(CustomResourceDefinition, crd["metadata"]["name"])
            if any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or [])):
                break
            assert time.monotonic() < deadline, f"CRD {crd['metadata']['name']} not Established"
            time.sleep(0.2)
    velero_ns = f"velero-{uuid.uuid4().hex[:6]}"
    kube_client.create(Namespace(metadata=ObjectMeta(name=velero_ns)))
    # Established is not served yet: the new resources answer 429 "storage is (re)initializing" a moment.
    http = _http(Path(kubeconfig))
    for plural in ("backups", "restores"):
        while http.get(f"{API}/namespaces/{velero_ns}/{plural}").status_code != 200:
            assert time.monotonic() < deadline, f"{plural}.velero.io not served"
            time.sleep(0.2)
    try:
        yield velero_ns
    finally:
        kube_client.delete(Namespace, velero_ns)
        for crd in crds:
            kube_client.delete(CustomResourceDefinition, crd["metadata"]["name"])
        # Later tests in this session expect velero.io not to be served: wait until it is gone.
        gone = time.monotonic() + 60
        while http.get(API).status_code != 404 and time.monotonic() < gone:
            time.sleep(0.2)


def _http(kubeconfig: Path) -> Any:
    from berth.kube.client import Target, connect

    return connect(Target(str(kubeconfig), None, None)).http


def _objects(http: Any, velero_ns: str, plural: str) -> list[dict[str, Any]]:
    resp = http.get(f"{API}/namespaces/{velero_ns}/{plural}")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def _play_velero(http: Any, velero_ns: str, plural: str, name: str, status: dict[str, Any]) -> None:
    """Write ``status`` as Velero's controller does (its CRDs have no status subresource)."""
    resp = http.patch(
        f"{API}/namespaces/{velero_ns}/{plural}/{name}",
        content=json.dumps({"status": status}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text


def _start(*args: str, kubeconfig: Path) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [*BERTH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )


def _created(http: Any, velero_ns: str, plural: str, known: set[str]) -> dict[str, Any]:
    """The one object of ``plural`` that appeared since ``known`` was taken (berth is creating it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [o for o in _objects(http, velero_ns, plural) if o["metadata"]["name"] not in known]
        if new:
            assert len(new) == 1
            return new[0]
        time.sleep(0.2)
    raise AssertionError(f"berth created no {plural} in {velero_ns}")


def test_backup_and_restore_follow_velero(
    velero: str, kubeconfig: Path, make_namespace: Any, tmp_path: Path, kube_client: Any
) -> None:
    """The whole round trip; this test plays Velero's server (it writes each object's status).

    Checked for real by the API server: the shape of the Backup and Restore (strict validation
    against Velero's schema), the selection (namespace, instance label, the spec's TTL), the
    refusals (running cluster, existing claims, an unfinished backup) and the mapping to a new
    namespace. Played: Velero's phases, progress, errors and failure reasons.
    """
    namespace, elsewhere = make_namespace(), make_namespace()
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2, backup={"schedule": "0 2 * * *", "ttl": "36h"}))
    up = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert up.returncode == 0, up.stderr
    http = _http(kubeconfig)

    # A backup: berth creates it, Velero (played) moves it InProgress with progress, then Completed.
    proc = _start("backup", "ml-training", "-n", namespace, "--velero-namespace", velero, kubeconfig=kubeconfig)
    backup = _created(http, velero, "backups", set())
    name = backup["metadata"]["name"]
    # <namespace>-<cluster>-<UTC time>, cut to Kubernetes' 63 characters (this namespace is long).
    assert len(name) <= 63 and name[-14:].isdigit() and f"{namespace}-ml-training".startswith(name[:-15])
    assert backup["spec"]["includedNamespaces"] == [namespace]
    assert backup["spec"]["labelSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "ml-training"}}
    assert backup["spec"]["ttl"] == "36h" and backup["spec"]["snapshotVolumes"] is True  # from spec.backup
    assert backup["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "berth"
    _play_velero(
        http, velero, "backups", name, {"phase": "InProgress", "progress": {"totalItems": 9, "itemsBackedUp": 4}}
    )
    time.sleep(2.5)  # berth polls once a second: it must see and show this phase
    _play_velero(
        http,
        velero,
        "backups",
        name,
        {
            "phase": "Completed",
            "progress": {"totalItems": 9, "itemsBackedUp": 9},
            "startTimestamp": "2026-12-01T01:00:00Z",
            "completionTimestamp": "2026-12-01T01:00:09Z",
        },
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "InProgress, 4/9 items" in err and "4 claims" in err
    assert f"Backup {velero}/{name}: Completed, 9/9 items" in out

    listed = berth("backups", "ml-training", "-n", namespace, "--velero-namespace", velero, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [(b["name"], b["phase"]) for b in json.loads(listed.stdout)["backups"]] == [(name, "Completed")]
    other_ns = berth("backups", "ml-training", "-n", elsewhere, "--velero-namespace", velero, "-o", "json")
    assert json.loads(other_ns.stdout)["backups"] == []  # same cluster name, other namespace: not listed

    # Nobody runs Velero for this one: berth says so when its --timeout ends, and it stays unfinished.
    stuck = berth(
        "backup",
        "ml-training",
        "-n",
        namespace,
        "--velero-namespace",
        velero,
        "--timeout",
        "2",
        "--backup-name",
        "stuck",
    )
    assert stuck.returncode == 1 and "no Velero server has picked it up" in stuck.stderr, stuck.stderr

    # Restore over the running cluster: refused (dry run or --yes), nothing created.
    restore = ("restore", "ml-training", "--from", name, "--velero-namespace", velero)
    running = berth(*restore, "--yes")
    assert running.returncode == 3  # refused, nothing written (docs/cli.md)
    assert f"cluster ml-training is running in {namespace}" in running.stdout
    assert "4 claims of ml-training still exist" in running.stdout and "--delete-volumes" in running.stdout
    assert _objects(http, velero, "restores") == []

    # The cluster stopped but its claims kept: still refused, Velero would skip the claims.
    down = berth("down", "ml-training", "-n", namespace, "--yes")
    assert down.returncode == 0, down.stderr
    claims_left = berth(*restore, "-o", "json")
    assert claims_left.returncode == 3
    plan = json.loads(claims_left.stdout)
    assert len(plan["existingClaims"]) == 4 and len(plan["blockers"]) == 1

    # An unfinished backup cannot be restored.
    unfinished = berth("restore", "ml-training", "--from", "stuck", "--velero-namespace", velero, "-n", elsewhere)
    assert unfinished.returncode == 3 and "Backup stuck is not processed yet" in unfinished.stdout

    # Into an empty namespace: the dry run shows the Restore and creates nothing...
    dry = berth(*restore, "-n", elsewhere)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    shown = yaml.safe_load(dry.stdout.split("--yes creates this Restore:\n", 1)[1])
    assert shown["spec"]["namespaceMapping"] == {namespace: elsewhere} and shown["spec"]["restorePVs"] is True
    assert _objects(http, velero, "restores") == []
    # ... and --yes creates it; Velero (played) fails it, and berth reports Velero's reason.
    proc = _start(*restore, "-n", elsewhere, "--yes", "--timeout", "60", kubeconfig=kubeconfig)
    created = _created(http, velero, "restores", set())
    assert created["spec"]["backupName"] == name
    assert created["spec"]["includedNamespaces"] == [namespace]
    assert created["spec"]["labelSelector"] == backup["spec"]["labelSelector"]
    reason = "error downloading backup: rpc error: code = Unknown desc = NoSuchKey"
    _play_velero(http, velero, "restores", created["metadata"]["name"], {"phase": "Failed", "failureReason": reason})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"ended Failed: {reason}" in err and "velero restore describe" in err

    # Again; Velero (played) completes it this time, and berth says where the cluster is back.
    known = {o["metadata"]["name"] for o in _objects(http, velero, "restores")}
    proc = _start(*restore, "-n", elsewhere, "--yes", "--restore-name", "again", kubeconfig=kubeconfig)
    assert _created(http, velero, "restores", known)["metadata"]["name"] == "again"
    _play_velero(
        http, velero, "restores", "again", {"phase": "Completed", "progress": {"totalItems": 9, "itemsRestored": 9}}
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"Restore {velero}/again: Completed, 9/9 items" in out and f"berth status ml-training -n {elsewhere}" in out


def test_backup_commands_with_exactly_the_documented_velero_role(
    velero: str, kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    """docs/rbac.md's Role and ClusterRole plus its berth-velero Role: the three commands work, nothing is forbidden."""
    import re

    from lightkube.codecs import from_dict

    from .test_rbac import RBAC_DOC, documented_deployer

    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", RBAC_DOC.read_text(), re.S)]
    role = next(b for b in blocks if b["kind"] == "Role" and b["metadata"]["name"] == "berth-velero")
    role["metadata"]["namespace"] = velero
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"berth-velero-{namespace}"[:63], "namespace": velero},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "berth-velero"},
    }
    with documented_deployer(kube_client, kubeconfig, namespace, tmp_path) as deployer:
        as_deployer = ("--kubeconfig", str(deployer), "--velero-namespace", velero)
        denied = berth("backup", "solo", "--no-wait", *as_deployer)
        assert denied.returncode == 1 and "forbidden" in denied.stderr, denied.stderr  # not bound yet
        from lightkube.core.exceptions import ApiError

        try:
            kube_client.create(from_dict(role))
        except ApiError as err:  # one Role per Velero namespace, shared by this module's tests
            assert err.status.code == 409
        kube_client.create(from_dict(binding))
        made = berth("backup", "solo", "--no-wait", "--backup-name", f"rbac-{namespace}"[:63], *as_deployer)
        assert made.returncode == 0, made.stderr
        listed = berth("backups", "solo", *as_deployer)
        assert listed.returncode == 0 and f"rbac-{namespace}"[:63] in listed.stdout, listed.stderr
        # Velero never ran it: refused for that reason, not for a permission.
        restore = berth("restore", "solo", "--from", f"rbac-{namespace}"[:63], "-n", namespace, *as_deployer)
        assert restore.returncode == 3 and "not processed yet" in restore.stdout, restore.stderr
        assert "forbidden" not in restore.stderr


def test_backup_flushes_every_rank_to_the_archive_first(
    velero: str,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    weed: Seaweed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`berth backup` of a cluster with spec.archive asks each rank to flush, through SeaweedFS.

    The kwok pods run no trainer, so this test runs rank 0's real CheckpointManager (the code a
    trainer runs, flush watcher included) against the cluster's archive; rank 1 has none and
    stays silent. The Backup is created all the same and records the step rank 0 flushed.
    """
    from berth.checkpoint import CheckpointManager

    for key, value in weed.env.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{weed.bucket('backup-flush')}/run"
    archive = {"url": url, "secretName": "ckpt-s3", "endpoint": weed.endpoint}
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2, archive=archive))
    up = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert up.returncode == 0, up.stderr
    rank0 = CheckpointManager(tmp_path / "r0", rank=0, world_size=2, archive=url, environ={"BERTH_FLUSH_POLL_S": "0.2"})
    try:
        rank0.save(4, {"w": [4]}, blocking=True)
        rank0.save(8, {"w": [8]}, blocking=True)
        args = ("backup", "ml-training", "-n", namespace, "--velero-namespace", velero, "--no-wait")
        done = berth(*args, "--flush-timeout", "5", "-o", "json", kubeconfig=kubeconfig, env=weed.env)
    finally:
        rank0.close()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [(f["rank"], f["step"], f["archived"]) for f in result["flush"]] == [(0, 8, True), (1, None, False)]
    assert "flush rank 0: step 8 archived" in done.stderr
    assert "warning: rank 1 did not flush (no answer within 5s" in done.stderr
    assert len(result["flushWarnings"]) == 1
    [backup] = [b for b in _objects(_http(kubeconfig), velero, "backups") if b["metadata"]["name"] == result["name"]]
    assert json.loads(backup["metadata"]["annotations"]["berth.dev/archive-steps"]) == {"0": 8}

    skipped = berth(*args, "--no-flush", "-o", "json", kubeconfig=kubeconfig, env=weed.env)
    assert skipped.returncode == 0 and "flush" not in json.loads(skipped.stdout), skipped.stderr
