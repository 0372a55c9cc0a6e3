"""berth plan / up / status against the real control plane: readiness, idempotency, diffs, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.kube.errors import ApplyConflict
from berth.kube.status import collect
from berth.sandbox.proc import free_ports

from .cluster_helpers import admin, berth, expected_claims, seed_like, write_spec

pytestmark = pytest.mark.cluster


def _fingerprints(kube_client: Any, namespace: str) -> dict[str, Any]:
    """Per object: generation and every non-status field-manager entry with its time; any write changes them.

    resourceVersion is no use here: controllers keep writing the status of the StatefulSet and PDB.
    """
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import ConfigMap, Namespace, Service, ServiceAccount
    from lightkube.resources.networking_v1 import NetworkPolicy
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    def mark(obj: Any) -> Any:
        return (
            obj.metadata.generation,
            sorted(
                (m.manager, m.operation, str(m.time))
                for m in obj.metadata.managedFields or []
                if m.subresource != "status"
            ),
        )

    out = {"Namespace": mark(kube_client.get(Namespace, namespace))}
    for model in (ServiceAccount, Service, StatefulSet, PodDisruptionBudget, NetworkPolicy, ConfigMap):
        for obj in kube_client.list(model, namespace=namespace, labels={"app.kubernetes.io/managed-by": "berth"}):
            out[f"{model.__name__}/{obj.metadata.name}"] = mark(obj)
    assert len(out) == 7
    return out


def test_seed_like_spec_reaches_ready_every_claim_bound_and_second_up_writes_nothing(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    spec = write_spec(tmp_path, seed_like(namespace, disruption={"minAvailable": 2}))
    first = berth("up", str(spec), "--timeout", "120", kubeconfig=kubeconfig)
    assert first.returncode == 0, first.stderr
    assert "+ StatefulSet" in first.stdout and "created" in first.stdout
    # No Prometheus Operator or Velero in the sandbox: skipped with a note, not a failure.
    assert "PrometheusRule" in first.stdout and "CRD is not installed" in first.stdout
    assert "ml-training ready: 3/3 pods, 6 claims Bound" in first.stdout

    status = berth("status", "ml-training", "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["rollout"] == "complete"
    assert [(p["ordinal"], p["ready"], p["phase"]) for p in state["pods"]] == [(i, True, "Running") for i in range(3)]
    assert all(p["zone"] in ("zone-a", "zone-b") and p["node"] for p in state["pods"])
    assert {c["name"] for c in state["claims"]} == expected_claims("ml-training", range(3))
    assert all(c["phase"] == "Bound" and c["volume"] and c["storageClass"] == "standard" for c in state["claims"])
    assert {c["requested"] for c in state["claims"]} == {"1Gi", "2Gi"}
    assert state["apiRequests"] == 4

    before = _fingerprints(kube_client, namespace)
    second = berth("up", str(spec), "--timeout", "60", kubeconfig=kubeconfig)
    assert second.returncode == 0, second.stderr
    assert f"nothing changed: ml-training in {namespace} already matches the spec" in second.stdout
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert _fingerprints(kube_client, namespace) == before  # not a single write

    plan = berth("plan", str(spec), "-o", "json", kubeconfig=kubeconfig)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["changes"] == 0

    # The spec's own rules hold for scale too: minAvailable 2 of 2 replicas would block every drain.
    refused = berth("scale", "ml-training", "2", "-n", namespace, kubeconfig=kubeconfig)
    assert refused.returncode == 2
    assert "cannot scale to 2: spec.disruption.minAvailable: minAvailable 2 with 2 replicas" in refused.stderr
    assert _fingerprints(kube_client, namespace) == before


def test_plan_diffs_fields_without_writing(kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any) -> None:
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2))
    assert berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig).returncode == 0
    before = _fingerprints(kube_client, namespace)
    changed = write_spec(tmp_path, seed_like(namespace, replicas=4, env={"NCCL_DEBUG": "INFO"}), "changed.yaml")
    result = berth("plan", str(changed), "-o", "json", "--no-lint", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    actions = {(o["kind"], o["name"]): o for o in plan["objects"]}
    sts = actions[("StatefulSet", "ml-training")]
    assert sts["action"] == "update"
    assert "spec.replicas" in sts["changed"]
    assert "spec.template.spec.containers[trainer].env[BERTH_REPLICAS].value" in sts["changed"]
    assert "spec.template.spec.containers[trainer].env[NCCL_DEBUG]" in sts["changed"]
    assert actions[("Service", "tensorflow-training")]["action"] == "unchanged"
    assert actions[("PrometheusRule", "ml-training-storage")]["action"] == "skipped"
    assert plan["changes"] == 1
    assert _fingerprints(kube_client, namespace) == before

    fresh = write_spec(tmp_path, seed_like(f"{namespace}-new"), "fresh.yaml")
    text = berth("plan", str(fresh), kubeconfig=kubeconfig)
    assert text.returncode == 0, text.stderr
    assert f"+ Namespace {namespace}-new: create" in text.stdout
    assert f"namespace {namespace}-new is created first" in text.stdout


def test_up_creates_the_namespace_it_needs(kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any) -> None:
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Namespace

    own = f"{namespace}-own"
    spec = write_spec(tmp_path, seed_like(own, replicas=1))
    try:
        result = berth("up", str(spec), "--timeout", "90", kubeconfig=kubeconfig)
        assert result.returncode == 0, result.stderr
        assert f"+ Namespace {own}: created" in result.stdout and "ml-training ready: 1/1 pods" in result.stdout
        labels = kube_client.get(Namespace, own).metadata.labels
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert kube_client.get(StatefulSet, "ml-training", namespace=own).spec.replicas == 1
    finally:
        kube_client.delete(Namespace, own)


def test_wait_timeout_says_what_blocks_in_the_schedulers_words(
    kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    resources = {"requests": {"cpu": "1", "nvidia.com/gpu": 64}, "limits": {"nvidia.com/gpu": 64}}
    spec = write_spec(tmp_path, seed_like(namespace, replicas=2, resources=resources))
    # Long enough for the StatefulSet controller and the scheduler to act on a loaded 2-core CI machine.
    result = berth("up", str(spec), "--timeout", "12s", kubeconfig=kubeconfig)
    assert result.returncode == 1
    assert "ml-training: 0/2 pods ready, 0/4 claims Bound" in result.stderr  # progress, one line per change
    first = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert first.startswith("error: ml-training not ready after 12s: ml-training: 0/2 pods ready")
    assert "ml-training-0: PodScheduled: 0/3 nodes are available" in first and "Insufficient nvidia.com/gpu" in first
    assert "claim model-storage-ml-training-0: Pending" in first  # WaitForFirstConsumer: no pod, no volume
    assert f"berth status ml-training -n {namespace}" in result.stderr
    assert "ml-training ready" not in result.stdout


def test_restricted_pod_security_namespace_admits_the_pods(
    kubeconfig: Path, make_namespace: Any, tmp_path: Path, kube_client: Any
) -> None:
    from lightkube import ApiError
    from lightkube.codecs import from_dict

    ns = make_namespace(labels={"pod-security.kubernetes.io/enforce": "restricted"})
    # The namespace really enforces: a pod that runs as root is refused.
    with pytest.raises(ApiError, match="violates PodSecurity"):
        kube_client.create(
            from_dict(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "root", "namespace": ns},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                }
            )
        )
    spec = write_spec(tmp_path, seed_like(ns, replicas=2))
    result = berth("up", str(spec), "--timeout", "90", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "ml-training ready: 2/2 pods" in result.stdout
    from lightkube.resources.core_v1 import Namespace

    assert kube_client.get(Namespace, ns).metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_immutable_template_change_names_the_field_and_the_way_out(
    kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, seed_like(namespace, replicas=1))
    assert berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig).returncode == 0
    doc = seed_like(namespace, replicas=1)
    doc["spec"]["volumes"]["model-storage"]["size"] = "5Gi"
    grown = write_spec(tmp_path, doc, "grown.yaml")
    for command in ("plan", "up"):
        result = berth(command, str(grown), kubeconfig=kubeconfig)
        assert result.returncode == 1, result.stdout
        assert (
            "spec.volumeClaimTemplates[model-storage].spec.resources.requests.storage ('1Gi' → '5Gi')" in result.stderr
        )
        assert "cannot change in place" in result.stderr
        # A size change has its own way out since `berth resize` exists: it patches the claims.
        assert "to grow volumes, run `berth resize SPEC --yes`: it patches each claim" in result.stderr
        assert "--cascade=orphan" in result.stderr
        assert "Traceback" not in result.stderr
        assert ("nothing was written" if command == "plan" else "the stack is NOT complete") in result.stderr


def test_conflicting_field_manager_reported_by_field_and_forced(
    kubeconfig: Path, kubectl: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    import subprocess

    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.types import PatchType

    spec = write_spec(tmp_path, seed_like(namespace, replicas=2))
    assert berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig).returncode == 0
    subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "scale",
            "statefulset",
            "ml-training",
            "--replicas=3",
        ],
        check=True,
        capture_output=True,
    )
    result = berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig)
    assert result.returncode == 1
    assert ".spec.replicas (owned by kubectl)" in result.stderr and "--force-conflicts" in result.stderr
    forced = berth("up", str(spec), "--no-wait", "--force-conflicts", kubeconfig=kubeconfig)
    assert forced.returncode == 0, forced.stderr
    assert "~ StatefulSet" in forced.stdout and "spec.replicas" in forced.stdout
    assert kube_client.get(StatefulSet, "ml-training", namespace=namespace).spec.replicas == 2
    # The library raises the typed error too.
    kube_client.patch(
        StatefulSet,
        "ml-training",
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ml-training"}, "spec": {"replicas": 3}},
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager="hpa-like",
        force=True,
    )
    from berth.kube.apply import ApplyFailed, apply_objects, desired_objects
    from berth.spec.load import load_spec

    with pytest.raises(ApplyFailed) as err:
        apply_objects(admin(kubeconfig, namespace), desired_objects(load_spec(spec)))
    assert isinstance(err.value.cause, ApplyConflict)
    assert [c.field for c in err.value.cause.conflicts] == [".spec.replicas"]


def test_status_costs_the_same_requests_for_any_replica_count(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    counts = []
    for replicas, name in ((1, "small"), (6, "large")):
        spec = write_spec(
            tmp_path, seed_like(namespace, name=name, replicas=replicas, serviceName=name), f"{name}.yaml"
        )
        assert berth("up", str(spec), "--timeout", "90", kubeconfig=kubeconfig).returncode == 0
        kube = admin(kubeconfig, namespace)
        state = collect(kube, name, namespace, volume_stats=True)
        assert len(state.pods) == replicas and len(state.claims) == 2 * replicas
        # kwok nodes have no kubelet: no stats call, and each claim says so instead of a zero.
        assert {c.usage_unknown for c in state.claims} == {"kwok node: no kubelet, no stats"}
        counts.append(kube.requests)
    assert counts == [4, 4]


def test_clear_errors_for_wrong_context_missing_namespace_and_no_cluster(kubeconfig: Path, tmp_path: Path) -> None:
    wrong = berth("status", "x", "--context", "does-not-exist", kubeconfig=kubeconfig)
    assert wrong.returncode == 1
    assert "context does-not-exist not found" in wrong.stderr and "berth-sandbox" in wrong.stderr
    missing = berth("status", "x", "-n", "no-such-namespace", kubeconfig=kubeconfig)
    assert missing.returncode == 1
    assert "namespace no-such-namespace does not exist" in missing.stderr
    absent = berth("status", "nothing-here", "-n", "default", kubeconfig=kubeconfig)
    assert absent.returncode == 1 and "no training cluster nothing-here in namespace default" in absent.stderr
    port = free_ports(1)[0]  # nothing listens there
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    down = berth("status", "x", "-n", "default", kubeconfig=dead, env={"BERTH_API_RETRY_S": "1"})
    assert down.returncode == 1
    assert f"no cluster reachable at https://127.0.0.1:{port}" in down.stderr and "after retrying" in down.stderr
    for result in (wrong, missing, absent, down):
        assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


def test_crd_backed_objects_are_applied_once_their_crd_is_served(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    """With the PrometheusRule CRD installed, berth discovers it and applies the rule like any object."""
    import time

    from lightkube import ApiError
    from lightkube.codecs import from_dict
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "plural": "prometheusrules",
                "singular": "prometheusrule",
                "kind": "PrometheusRule",
                "listKind": "PrometheusRuleList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    kube_client.create(from_dict(crd))
    try:
        deadline = time.monotonic() + 30
        while not any(
            c.type == "Established" and c.status == "True"
            for c in (kube_client.get(CustomResourceDefinition, crd["metadata"]["name"]).status.conditions or [])
        ):
            assert time.monotonic() < deadline, "CRD not established"
            time.sleep(0.2)
        spec = write_spec(tmp_path, seed_like(namespace, replicas=1))
        first = berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig)
        assert first.returncode == 0, first.stderr
        assert f"+ PrometheusRule {namespace}/ml-training-storage: created" in first.stdout
        assert "Schedule" in first.stdout and "CRD is not installed" in first.stdout  # Velero still absent
        second = berth("up", str(spec), "--no-wait", kubeconfig=kubeconfig)
        assert f"= PrometheusRule {namespace}/ml-training-storage: unchanged" in second.stdout
        removed = berth("down", "ml-training", "-n", namespace, "--yes", "-o", "json", kubeconfig=kubeconfig)
        assert {"kind": "PrometheusRule", "name": "ml-training-storage", "deleted": True}.items() <= next(
            o for o in json.loads(removed.stdout)["objects"] if o["kind"] == "PrometheusRule"
        ).items()
    finally:
        kube_client.delete(CustomResourceDefinition, crd["metadata"]["name"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # later tests expect the group not to be served
            try:
                kube_client.get(CustomResourceDefinition, crd["metadata"]["name"])
            except ApiError:
                break
            time.sleep(0.2)
