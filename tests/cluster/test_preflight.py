"""`berth plan`/`up` before writing: cluster-wide class names (issue 11) and operator-managed clusters (issue 15)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.contract import ANNOTATION_OWNER
from berth.kube.preflight import REFUSED_EXIT, Refused
from berth.kube.resize import resize
from berth.kube.scale import scale
from berth.kube.up import up
from berth.spec.load import spec_from_data

from .cluster_helpers import admin, berth, seed_like, write_spec
from .test_operator_crd import install_crd, kubectl_run

pytestmark = pytest.mark.cluster


@pytest.fixture
def class_name(kube_client: Any) -> Iterator[str]:
    """A StorageClass name no other test uses; the class is deleted afterwards (it outlives namespaces)."""
    from lightkube import ApiError
    from lightkube.resources.storage_v1 import StorageClass

    name = f"fast-{uuid.uuid4().hex[:6]}"
    yield name
    with contextlib.suppress(ApiError):
        kube_client.delete(StorageClass, name)


def _spec(namespace: str, classes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """The seed-like spec (volumes on the sandbox's `standard`) declaring ``classes`` besides it."""
    return seed_like(
        namespace, replicas=1, storageClasses={"standard": {"existing": True, "tier": "hot"}, **classes}, **spec
    )


def _gp3(iops: int) -> dict[str, Any]:
    return {"provider": "aws-ebs", "type": "gp3", "iops": iops}


def _live_class(kube_client: Any, name: str) -> Any:
    from lightkube.resources.storage_v1 import StorageClass

    return kube_client.get(StorageClass, name)


def test_same_class_name_in_two_namespaces_with_other_iops_is_refused_naming_both_owners(
    kubeconfig: Path, make_namespace: Any, class_name: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.resources.apps_v1 import StatefulSet

    team_a, team_b = make_namespace(), make_namespace()
    first = up(admin(kubeconfig, team_a), spec_from_data(_spec(team_a, {class_name: _gp3(3000)})), wait=False)
    assert ("StorageClass", class_name, "create") in [(r.kind, r.name, r.action) for r in first.results]
    assert _live_class(kube_client, class_name).metadata.annotations[ANNOTATION_OWNER] == f"{team_a}/ml-training"

    other = write_spec(tmp_path, _spec(team_b, {class_name: _gp3(16000)}), "team-b.yaml")
    plan = berth("plan", str(other), "-o", "json", "--no-lint", kubeconfig=kubeconfig)
    assert plan.returncode == REFUSED_EXIT, plan.stderr
    body = json.loads(plan.stdout)  # the whole plan is still printed, then the error
    (conflict,) = body["conflicts"]
    assert conflict["kind"] == "StorageClass" and conflict["name"] == class_name
    assert conflict["ownerCluster"] == f"{team_a}/ml-training" and conflict["wantedBy"] == f"{team_b}/ml-training"
    assert conflict["fieldManagers"] == ["berth"] and conflict["immutable"] is False
    assert conflict["fields"] == [{"path": "parameters.iops", "live": "3000", "wanted": "16000"}]
    row = next(o for o in body["objects"] if o["kind"] == "StorageClass")
    assert row["action"] == "skipped" and row["note"].startswith("CONFLICT: ")
    assert body["upRefuses"]["exitCode"] == REFUSED_EXIT
    assert "existing: true" in body["upRefuses"]["hint"]
    text = berth("plan", str(other), "--no-lint", kubeconfig=kubeconfig)
    assert text.returncode == REFUSED_EXIT
    assert f"  ! StorageClass {class_name}: skip (parameters.iops) — CONFLICT: " in text.stdout
    assert text.stdout.rstrip().endswith(", 1 conflicting")
    assert text.stderr.startswith(f"error: StorageClass {class_name} belongs to berth cluster {team_a}/ml-training")

    refused = berth("up", str(other), "--no-wait", kubeconfig=kubeconfig)
    assert refused.returncode == REFUSED_EXIT
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in refused.stderr
    assert lines[0] == (
        f"error: StorageClass {class_name} belongs to berth cluster {team_a}/ml-training (field manager berth), "
        f"with settings other than {team_b}/ml-training wants: parameters.iops '3000' → '16000' "
        "— nothing was written"
    )
    assert lines[1].startswith(f"  hint: give this cluster its own class name (e.g. {class_name}-{team_b} ")
    assert f"spec.storageClasses.{class_name}.existing: true" in lines[1]
    # Nothing was written: team A's class as it was, no workload in team B.
    live = _live_class(kube_client, class_name)
    assert live.parameters["iops"] == "3000" and live.metadata.annotations[ANNOTATION_OWNER] == f"{team_a}/ml-training"
    assert list(kube_client.list(StatefulSet, namespace=team_b)) == []

    # Way out 1: use the class as it is.
    adopted = write_spec(tmp_path, _spec(team_b, {class_name: {"existing": True}}), "adopted.yaml")
    done = berth("up", str(adopted), "--no-wait", "-o", "json", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    assert class_name not in done.stdout
    # Way out 2: the same settings are no clash: the class is used as it is and not written.
    same = write_spec(tmp_path, _spec(team_b, {class_name: _gp3(3000)}), "same.yaml")
    shared = berth("up", str(same), "--no-wait", kubeconfig=kubeconfig)
    assert shared.returncode == 0, shared.stderr
    assert (
        f"= StorageClass {class_name}: unchanged — exists with the same settings and belongs to berth cluster "
        f"{team_a}/ml-training (field manager berth): used as it is, not written"
    ) in shared.stdout
    assert _live_class(kube_client, class_name).metadata.labels["app.kubernetes.io/instance"] == "ml-training"
    assert _live_class(kube_client, class_name).metadata.annotations[ANNOTATION_OWNER] == f"{team_a}/ml-training"

    # Team A changing its own class's parameters: the server would only say Forbidden; berth names it.
    changed = write_spec(tmp_path, _spec(team_a, {class_name: _gp3(6000)}), "team-a.yaml")
    own = berth("up", str(changed), "--no-wait", kubeconfig=kubeconfig)
    assert own.returncode == REFUSED_EXIT
    assert own.stderr.startswith(
        f"error: StorageClass {class_name} of berth cluster {team_a}/ml-training (field manager berth) cannot "
        "change in place: parameters.iops '3000' → '6000'; a StorageClass's parameters, provisioner, "
        "reclaimPolicy, volumeBindingMode are immutable"
    )
    assert f"kubectl delete storageclass {class_name}" in own.stderr


def test_a_class_someone_else_made_is_reused_when_equal_and_refused_when_not(
    kubeconfig: Path, namespace: str, class_name: str, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.storage_v1 import StorageClass

    kube_client.create(
        StorageClass(
            metadata=ObjectMeta(name=class_name),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "iops": "3000", "encrypted": "true"},
            reclaimPolicy="Delete",
            volumeBindingMode="WaitForFirstConsumer",
            allowVolumeExpansion=True,
        )
    )
    kube = admin(kubeconfig, namespace)
    clash = _spec(namespace, {class_name: {**_gp3(3000), "tier": "hot"}})  # hot: reclaim Retain
    with pytest.raises(Refused) as refused:
        up(kube, spec_from_data(clash), wait=False)
    assert refused.value.exit_code == REFUSED_EXIT
    assert refused.value.message == (
        f"StorageClass {class_name} belongs to another owner (field manager berth-tests), with settings other "
        f"than {namespace}/ml-training wants: reclaimPolicy 'Delete' → 'Retain' — nothing was written"
    )

    reused = up(kube, spec_from_data(_spec(namespace, {class_name: _gp3(3000)})), wait=False)
    row = next(r for r in reused.results if r.kind == "StorageClass")
    assert row.action == "unchanged" and "belongs to another owner (field manager berth-tests)" in (row.note or "")
    live = _live_class(kube_client, class_name)
    assert live.metadata.labels is None and live.metadata.annotations is None  # not taken over
    assert {m.manager for m in live.metadata.managedFields} == {"berth-tests"}


def test_operator_managed_cluster_is_refused_by_up_scale_down_and_resize(
    kubeconfig: Path, kubectl: Path, namespace: str, tmp_path: Path
) -> None:
    install_crd(kubectl, kubeconfig)
    doc = seed_like(namespace, replicas=1)
    spec = write_spec(tmp_path, doc)
    made = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert made.returncode == 0, made.stderr
    ref = f"TrainingCluster {namespace}/ml-training"
    # The CLI: up and down ask before calling the library (which is also the operator's own apply and delete).
    for args, instead in [
        (("up", str(spec), "--no-wait"), f"kubectl edit tc ml-training -n {namespace}"),
        (("down", "ml-training", "-n", namespace, "--yes"), f"kubectl delete tc/ml-training -n {namespace}"),
    ]:
        result = berth(*args, kubeconfig=kubeconfig)
        assert result.returncode == REFUSED_EXIT, (args, result.stderr)
        assert result.stderr.startswith(
            f"error: {ref} manages this cluster: the berth operator reconciles it, and `berth {args[0]}` would fight it"
        ), result.stderr
        assert instead in result.stderr and "Traceback" not in result.stderr
    # The library: scale and resize refuse by themselves (the CLI only prints their error).
    kube = admin(kubeconfig, namespace)
    with pytest.raises(Refused, match="`berth scale` would fight it") as scaling:
        scale(kube, "ml-training", namespace, 2)
    assert (
        scaling.value.hint
        == f"scale the TrainingCluster instead: `kubectl scale tc/ml-training -n {namespace} --replicas N`"
    )
    with pytest.raises(Refused, match="`berth resize` would fight it") as resizing:
        resize(kube, spec_from_data(doc), yes=True)
    assert "spec.volumes.<volume>.size in the TrainingCluster" in (resizing.value.hint or "")

    plan = berth("plan", str(spec), "-o", "json", "--no-lint", kubeconfig=kubeconfig)
    assert plan.returncode == REFUSED_EXIT
    body = json.loads(plan.stdout)
    assert body["upRefuses"]["message"].startswith(f"{ref} manages this cluster")
    assert body["changes"] > 0 and body["conflicts"] == []

    # Being deleted (the operator's finalizer at work): wait, do not re-create what it removes.
    held = '{"metadata":{"finalizers":["example.com/hold"]}}'
    hold = kubectl_run(kubectl, kubeconfig, "patch", "tc", "ml-training", "-n", namespace, "--type=merge", "-p", held)
    assert hold.returncode == 0, hold.stderr
    deleting = kubectl_run(kubectl, kubeconfig, "delete", "tc", "ml-training", "-n", namespace, "--wait=false")
    assert deleting.returncode == 0, deleting.stderr
    waiting = berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig)
    assert waiting.returncode == REFUSED_EXIT
    assert waiting.stderr.startswith(f"error: {ref} is being deleted: the berth operator is removing this cluster")
    assert f"wait until `kubectl get tc ml-training -n {namespace}` says NotFound" in waiting.stderr

    released = '{"metadata":{"finalizers":null}}'
    gone = kubectl_run(
        kubectl, kubeconfig, "patch", "tc", "ml-training", "-n", namespace, "--type=merge", "-p", released
    )
    assert gone.returncode == 0, gone.stderr
    assert kubectl_run(kubectl, kubeconfig, "wait", "--for=delete", "tc/ml-training", "-n", namespace).returncode == 0
    assert up(kube, spec_from_data(doc), wait=False).changed  # no TrainingCluster: berth up's again


@pytest.fixture
def snapshot_class_crd(kube_client: Any) -> Iterator[None]:
    """The VolumeSnapshotClass CRD (cluster-scoped, as the external-snapshotter serves it), removed afterwards."""
    import time

    from lightkube import ApiError
    from lightkube.codecs import from_dict
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    name = "volumesnapshotclasses.snapshot.storage.k8s.io"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        # *.k8s.io groups need this approval annotation; the external-snapshotter's CRD carries the same.
        "metadata": {
            "name": name,
            "annotations": {
                "api-approved.kubernetes.io": "https://github.com/kubernetes-csi/external-snapshotter/pull/419"
            },
        },
        "spec": {
            "group": "snapshot.storage.k8s.io",
            "scope": "Cluster",
            "names": {
                "plural": "volumesnapshotclasses",
                "singular": "volumesnapshotclass",
                "kind": "VolumeSnapshotClass",
            },
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }
    kube_client.create(from_dict(crd))
    deadline = time.monotonic() + 30
    while not any(
        c.type == "Established" and c.status == "True"
        for c in (kube_client.get(CustomResourceDefinition, name).status.conditions or [])
    ):
        assert time.monotonic() < deadline, "CRD not established"
        time.sleep(0.2)
    yield
    kube_client.delete(CustomResourceDefinition, name)  # its objects go with it
    while time.monotonic() < deadline + 30:  # later tests expect the group not to be served
        try:
            kube_client.get(CustomResourceDefinition, name)
        except ApiError:
            break
        time.sleep(0.2)


def test_snapshot_class_of_the_same_name_is_shared_and_down_keeps_the_other_clusters(
    kubeconfig: Path, make_namespace: Any, snapshot_class_crd: None, tmp_path: Path
) -> None:
    team_a, team_b = make_namespace(), make_namespace()
    backup = {"schedule": "0 2 * * *", "snapshotDriver": "ebs.csi.aws.com"}
    kube_a = admin(kubeconfig, team_a)
    up(kube_a, spec_from_data(seed_like(team_a, replicas=1, backup=backup)), wait=False)
    shared = up(admin(kubeconfig, team_b), spec_from_data(seed_like(team_b, replicas=1, backup=backup)), wait=False)
    row = next(r for r in shared.results if r.kind == "VolumeSnapshotClass")
    assert (row.name, row.action) == ("ml-training-snapshots", "unchanged")
    assert f"belongs to berth cluster {team_a}/ml-training" in (row.note or "")

    down_b = berth("down", "ml-training", "-n", team_b, "--yes", "-o", "json", kubeconfig=kubeconfig)
    assert down_b.returncode == 0, down_b.stderr
    kept = next(o for o in json.loads(down_b.stdout)["objects"] if o["kind"] == "VolumeSnapshotClass")
    assert kept["delete"] is False and kept["deleted"] is False
    assert kept["reason"].startswith(f"cluster-wide, owned by berth cluster {team_a}/ml-training")

    other = write_spec(
        tmp_path, seed_like(team_b, replicas=1, backup={**backup, "snapshotDriver": "pd.csi.storage.gke.io"})
    )
    plan = berth("plan", str(other), "-o", "json", "--no-lint", kubeconfig=kubeconfig)
    assert plan.returncode == REFUSED_EXIT
    (conflict,) = json.loads(plan.stdout)["conflicts"]
    assert conflict["fields"] == [{"path": "driver", "live": "ebs.csi.aws.com", "wanted": "pd.csi.storage.gke.io"}]

    down_a = berth("down", "ml-training", "-n", team_a, "--yes", "-o", "json", kubeconfig=kubeconfig)
    gone = next(o for o in json.loads(down_a.stdout)["objects"] if o["kind"] == "VolumeSnapshotClass")
    assert gone["deleted"] is True  # its owner's down removes it
