"""What each rendered object must say, per the issue, checked on the examples that exercise it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from berth.providers.limits import Tier
from berth.spec.model import EnvSource

from .conftest import Rendered

CONTRACT_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)
CONTRACT_ENV = (
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_INDEX",
    "BERTH_NAME",
    "BERTH_SERVICE",
    "BERTH_NAMESPACE",
    "BERTH_CLUSTER_DOMAIN",
    "BERTH_PORT",
    "BERTH_REPLICAS",
    "BERTH_FRAMEWORK",
    "BERTH_GPUS_PER_POD",
    "BERTH_METRICS_PORT",
)


def _pod(r: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = r.one("StatefulSet")["spec"]["template"]["spec"]
    return spec


def _container(r: Rendered) -> dict[str, Any]:
    container: dict[str, Any] = _pod(r)["containers"][0]
    return container


def _env(r: Rendered) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(r)["env"]}


def _by_name(r: Rendered, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in r.objects if o["kind"] == kind}


def test_every_object_and_template_carries_the_contract_labels(examples: dict[str, Rendered]) -> None:
    """Including the pods and the claims the StatefulSet creates: gc and lint find them by these.

    Not the Namespace: every cluster in it applies that one object (see the namespace test).
    """
    for r in examples.values():
        sts = r.one("StatefulSet")
        label_sets = [
            (f"{o['kind']}/{o['metadata']['name']}", o["metadata"]["labels"])
            for o in r.objects
            if o["kind"] != "Namespace"
        ]
        label_sets.append(("pod template", sts["spec"]["template"]["metadata"]["labels"]))
        label_sets += [
            (f"claim template {t['metadata']['name']}", t["metadata"]["labels"])
            for t in sts["spec"].get("volumeClaimTemplates", [])
        ]
        for where, labels in label_sets:
            missing = [k for k in CONTRACT_LABELS if k not in labels]
            assert not missing, f"{r.name}: {where} lacks {missing}"
            assert labels["app.kubernetes.io/managed-by"] == "berth"
            assert labels["app.kubernetes.io/instance"] == r.spec.name


def test_headless_service(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        svc = r.one("Service")["spec"]
        assert svc["clusterIP"] == "None" and svc["publishNotReadyAddresses"] is True
        ports = {p["name"]: p for p in svc["ports"]}
        assert ports["training"]["port"] == r.spec.spec.port
        container_ports = {p["name"]: p["containerPort"] for p in _container(r)["ports"]}
        for port in svc["ports"]:
            assert port["targetPort"] in container_ports  # named ports that exist on the pod


def test_statefulset_shape(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        sts = r.one("StatefulSet")["spec"]
        s = r.spec.spec
        assert sts["serviceName"] == r.spec.service_name and sts["replicas"] == s.replicas
        assert sts["podManagementPolicy"] == "Parallel"
        assert sts["persistentVolumeClaimRetentionPolicy"] == {
            "whenScaled": s.volume_retention.when_scaled,
            "whenDeleted": s.volume_retention.when_deleted,
        }
        templates = {t["metadata"]["name"]: t["spec"] for t in sts.get("volumeClaimTemplates", [])}
        assert set(templates) == set(s.volumes)
        for name, vol in s.volumes.items():
            assert templates[name]["storageClassName"] == vol.storage_class
            assert templates[name]["resources"]["requests"]["storage"] == vol.size
        sized = s.lifecycle is not None and s.lifecycle.checkpoint_size is not None  # test_lifecycle_grace.py
        grace = _pod(r)["terminationGracePeriodSeconds"]
        assert grace >= 30 and (sized or grace == s.termination_grace_period_seconds)


def test_checkpoint_volume_is_marked_and_announced(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        sts = r.one("StatefulSet")["spec"]
        marked = [
            t["metadata"]["name"]
            for t in sts.get("volumeClaimTemplates", [])
            if t["metadata"].get("annotations", {}).get("berth.dev/checkpoint-volume") == "true"
        ]
        expected = r.spec.checkpoint_volume()
        assert marked == ([expected] if expected else [])
        if expected:
            assert _env(r)["BERTH_CHECKPOINT_DIR"]["value"] == r.spec.checkpoint_dir()
            tier = r.spec.tier_of(r.spec.spec.volumes[expected].storage_class)
            assert tier in (Tier.HOT, None)
    # The horovod example opts its scratch volume out; jax moves the directory.
    assert examples["horovod"].spec.checkpoint_volume() == "checkpoints"
    assert _env(examples["jax"])["BERTH_CHECKPOINT_DIR"]["value"] == "/checkpoints/jax-lm"


def test_shared_volumes_mounted_read_only_by_access_mode(examples: dict[str, Rendered]) -> None:
    seen = set()
    for r in examples.values():
        mounts = {m["name"]: m for m in _container(r).get("volumeMounts", [])}
        volumes = {v["name"]: v for v in _pod(r).get("volumes", [])}
        for name, sv in r.spec.spec.shared_volumes.items():
            read_only = sv.access_mode == "ReadOnlyMany"
            seen.add(read_only)
            assert mounts[name].get("readOnly", False) is read_only, (r.name, name)
            # A dataset's volume is read-only per mount only (docs/storage.md: fsGroup for the populate Job).
            filled = any(d.into == name for d in r.spec.spec.datasets.values())
            pod_read_only = read_only and not filled
            assert volumes[name]["persistentVolumeClaim"] == {"claimName": sv.claim_name, "readOnly": pod_read_only}
        for name, vol in r.spec.spec.volumes.items():
            assert mounts[name]["mountPath"] == vol.mount_path and "readOnly" not in mounts[name]
    assert seen == {True, False}


def test_downward_api_and_contract_env(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        env = _env(r)
        assert all(k in env for k in CONTRACT_ENV), [k for k in CONTRACT_ENV if k not in env]
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['apps.kubernetes.io/pod-index']"
        )
        assert env["BERTH_REPLICAS"]["value"] == str(r.spec.spec.replicas)
        assert env["BERTH_GPUS_PER_POD"]["value"] == str(r.spec.gpus_per_pod)
        for key, value in r.spec.spec.env.items():
            if isinstance(value, EnvSource):  # read at start-up from a Secret, ConfigMap or field
                assert env[key] == {"name": key, "valueFrom": value.value_from}
            else:
                assert env[key] == {"name": key, "value": value}


def test_archive_settings_come_from_the_secret(examples: dict[str, Rendered]) -> None:
    env = _env(examples["pytorch"])
    assert env["BERTH_ARCHIVE_URL"]["value"] == "s3://ml-archive/llm-pretrain"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "s3-credentials", "key": key}}
    assert env["AWS_ENDPOINT_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["AWS_REGION"] == {"name": "AWS_REGION", "value": "us-east-1"}
    assert "BERTH_ARCHIVE_URL" not in _env(examples["jax"])
    # Credentials never appear as literal values.
    assert all("value" not in env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))


def test_scheduling(examples: dict[str, Rendered]) -> None:
    jax, hvd, tf = _pod(examples["jax"]), _pod(examples["horovod"]), _pod(examples["seed-tensorflow"])
    assert jax["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    spread = {c["topologyKey"]: c["whenUnsatisfiable"] for c in jax["topologySpreadConstraints"]}
    assert spread == {"topology.kubernetes.io/zone": "ScheduleAnyway", "kubernetes.io/hostname": "DoNotSchedule"}
    spread = {c["topologyKey"]: c["whenUnsatisfiable"] for c in tf["topologySpreadConstraints"]}
    assert spread == {"topology.kubernetes.io/zone": "ScheduleAnyway", "kubernetes.io/hostname": "ScheduleAnyway"}
    assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in hvd["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in hvd["tolerations"]
    assert "tolerations" not in _pod(examples["seed-shared-dataset"])  # no GPUs requested
    assert _container(examples["horovod"])["args"] == ["--epochs", "90"]
    assert _container(examples["horovod"])["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    ("example", "name", "provisioner", "parameters"),
    [
        (
            "seed-tensorflow",
            "fast-ssd",
            "ebs.csi.aws.com",
            {"type": "gp3", "iops": "16000", "throughput": "1000", "encrypted": "true"},
        ),
        (
            "pytorch",
            "ml-nvme",
            "ebs.csi.aws.com",
            {
                "type": "io2",
                "iopsPerGB": "50",
                "encrypted": "true",
                "kmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            },
        ),
        (
            "jax",
            "hyperdisk",
            "pd.csi.storage.gke.io",
            {
                "type": "hyperdisk-balanced",
                "provisioned-iops-on-create": "20000",
                "provisioned-throughput-on-create": "800Mi",
            },
        ),
        ("jax", "balanced", "pd.csi.storage.gke.io", {"type": "pd-balanced", "csi.storage.k8s.io/fstype": "xfs"}),
        ("jax", "filer", "nfs.csi.k8s.io", {"server": "filer.storage.svc.cluster.local", "share": "/exports/datasets"}),
        (
            "horovod",
            "premium-v2",
            "disk.csi.azure.com",
            {
                "skuName": "PremiumV2_LRS",
                "DiskIOPSReadWrite": "20000",
                "DiskMBpsReadWrite": "600",
                "cachingMode": "None",
            },
        ),
        ("horovod", "premium-zrs", "disk.csi.azure.com", {"skuName": "Premium_ZRS"}),
        ("horovod", "cephfs", "cephfs.csi.ceph.com", {"clusterID": "rook-ceph", "fsName": "shared"}),
        (
            "horovod",
            "ceph-block",
            "rbd.csi.ceph.com",
            {"clusterID": "rook-ceph", "pool": "replicapool", "imageFeatures": "layering"},
        ),
        ("pytorch", "local-nvme", "rancher.io/local-path", None),
        (
            "pytorch",
            "fsx",
            "fsx.csi.aws.com",
            {
                "subnetId": "subnet-0123456789abcdef0",
                "securityGroupIds": "sg-0123456789abcdef0",
                "deploymentType": "PERSISTENT_2",
                "perUnitStorageThroughput": "250",
            },
        ),
    ],
)
def test_storage_class_presets(
    example: str, name: str, provisioner: str, parameters: dict[str, str] | None, examples: dict[str, Rendered]
) -> None:
    r = examples[example]
    sc = _by_name(r, "StorageClass")[name]
    spec = r.spec.spec.storage_classes[name]
    assert sc["provisioner"] == provisioner
    assert sc.get("parameters") == parameters
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["allowVolumeExpansion"] is (spec.provider.value != "local")  # type: ignore[union-attr]
    assert sc["reclaimPolicy"] == ("Retain" if spec.tier is Tier.HOT else "Delete")
    assert sc["metadata"]["annotations"]["berth.dev/tier"] == spec.tier.value
    assert "namespace" not in sc["metadata"]
    if provisioner == "nfs.csi.k8s.io":
        assert sc["mountOptions"] == ["nfsvers=4.1"]


def test_existing_classes_are_not_rendered(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        existing = {n for n, sc in r.spec.spec.storage_classes.items() if sc.existing}
        assert existing.isdisjoint(_by_name(r, "StorageClass"))
    assert "standard" not in _by_name(examples["seed-tensorflow"], "StorageClass")


def test_shared_claims_and_static_nfs_volume(examples: dict[str, Rendered]) -> None:
    r = examples["pytorch"]
    claims, volumes = _by_name(r, "PersistentVolumeClaim"), _by_name(r, "PersistentVolume")
    dataset, (pv,) = claims["pile-dataset"], volumes.values()
    assert dataset["metadata"]["annotations"]["berth.dev/protect"] == "true"
    assert dataset["spec"]["storageClassName"] == "" == pv["spec"]["storageClassName"]
    assert dataset["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pv["spec"]["claimRef"] == {"namespace": "training", "name": "pile-dataset"}
    assert pv["spec"]["nfs"] == {"server": "10.0.12.4", "path": "/exports/pile", "readOnly": True}
    assert pv["spec"]["capacity"]["storage"] == dataset["spec"]["resources"]["requests"]["storage"] == "20Ti"
    assert pv["spec"]["accessModes"] == dataset["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    output = claims["pretrain-output"]["spec"]
    assert (output["storageClassName"], output["accessModes"]) == ("fsx", ["ReadWriteMany"])
    shared = _by_name(examples["seed-shared-dataset"], "PersistentVolumeClaim")["shared-dataset"]["spec"]
    assert shared == {
        "accessModes": ["ReadOnlyMany"],
        "resources": {"requests": {"storage": "1Ti"}},
        "storageClassName": "nfs-client",
    }


def test_disruption_budget(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        pdb = r.one("PodDisruptionBudget")["spec"]
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        d = r.spec.spec.disruption
        if d.min_available is not None:
            assert pdb["minAvailable"] == d.min_available and "maxUnavailable" not in pdb
        else:
            assert pdb["maxUnavailable"] == (1 if d.max_unavailable is None else d.max_unavailable)
    assert examples["seed-tensorflow"].one("PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert examples["seed-shared-dataset"].one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_network_policy(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        policy = r.one("NetworkPolicy")["spec"]
        pods = r.one("StatefulSet")["spec"]["selector"]["matchLabels"]
        assert policy["podSelector"]["matchLabels"] == pods and policy["policyTypes"] == ["Ingress"]
        peers, monitoring = policy["ingress"]
        assert peers == {"from": [{"podSelector": {"matchLabels": pods}}]}
        assert monitoring["ports"] == [{"protocol": "TCP", "port": r.spec.spec.metrics_port}]
        assert monitoring["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": r.spec.spec.monitoring.namespace}}}
        ]


def test_monitoring(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        config = yaml.safe_load(_by_name(r, "ConfigMap")[f"{r.spec.name}-prometheus-scrape"]["data"]["prometheus.yml"])
        (job,) = config["scrape_configs"]
        keep = {rc["source_labels"][0]: rc["regex"] for rc in job["relabel_configs"] if rc.get("action") == "keep"}
        assert keep["__meta_kubernetes_pod_label_app_kubernetes_io_instance"] == r.spec.name
        assert keep["__meta_kubernetes_pod_container_port_name"] == "metrics"
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [r.spec.namespace]}}]
        rules = {rule["alert"]: rule for g in r.one("PrometheusRule")["spec"]["groups"] for rule in g["rules"]}
        assert "kubelet_volume_stats_used_bytes" in rules["BerthVolumeFillingUp"]["expr"]
        assert rules["BerthVolumeFillingUp"]["expr"].endswith("> 0.80")
        assert rules["BerthVolumeAlmostFull"]["expr"].endswith("> 0.90")
        assert 'phase="Pending"' in rules["BerthClaimPending"]["expr"] and rules["BerthClaimPending"]["for"] == "10m"
        assert "kube_pod_container_status_restarts_total" in rules["BerthPodRestarting"]["expr"]
        stale = rules["BerthCheckpointStale"]["expr"]
        assert stale.startswith("time() - berth_checkpoint_last_success_timestamp_seconds{")
        age = {"2h": 7200, "90m": 5400, "1h": 3600}[r.spec.spec.monitoring.checkpoint_max_age]
        assert stale.endswith(f"> {age}")
    assert examples["jax"].one("PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert examples["horovod"].one("ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"


def test_backup(examples: dict[str, Rendered]) -> None:
    drivers = {"seed-tensorflow": "ebs.csi.aws.com", "jax": "pd.csi.storage.gke.io", "pytorch": "ebs.csi.aws.com"}
    for name, driver in drivers.items():
        r = examples[name]
        assert r.spec.spec.backup is not None
        schedule = r.one("Schedule")
        assert schedule["metadata"]["namespace"] == "velero"
        assert schedule["spec"]["schedule"] == r.spec.spec.backup.schedule
        template = schedule["spec"]["template"]
        assert template["includedNamespaces"] == [r.spec.namespace]
        assert template["labelSelector"] == {"matchLabels": {"app.kubernetes.io/instance": r.spec.name}}
        assert template["ttl"] == r.spec.spec.backup.ttl and template["snapshotVolumes"] is True
        vsc = r.one("VolumeSnapshotClass")
        assert vsc["driver"] == driver
        # Named on the Schedule (copied to its backups), never the cluster-wide default label.
        assert "velero.io/csi-volumesnapshot-class" not in vsc["metadata"]["labels"]
        annotation = f"velero.io/csi-volumesnapshot-class_{driver}"
        assert schedule["metadata"]["annotations"][annotation] == vsc["metadata"]["name"]
    assert examples["seed-tensorflow"].one("Schedule")["spec"]["schedule"] == "0 2 * * *"  # the guide's 02:00
    assert examples["jax"].one("Schedule")["spec"]["template"]["storageLocation"] == "gcs-backups"
    assert not [o for o in examples["horovod"].objects if o["kind"] in ("Schedule", "VolumeSnapshotClass")]


def test_namespace_warns_and_audits_restricted_without_enforcing(examples: dict[str, Rendered]) -> None:
    ns = examples["jax"].one("Namespace")
    assert ns["metadata"]["name"] == "research"
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    # Applying enforce to a namespace that already holds other workloads is its owner's call.
    assert "pod-security.kubernetes.io/enforce" not in labels
    # Shared by every cluster in it: nothing per cluster that each apply would rewrite.
    assert set(labels) == {
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/managed-by",
        "pod-security.kubernetes.io/warn",
        "pod-security.kubernetes.io/audit",
    }
    assert "annotations" not in ns["metadata"]
    # The default namespace is the cluster's: berth never renders (or relabels) it.
    assert not [o for o in examples["seed-shared-dataset"].objects if o["kind"] == "Namespace"]


def test_service_account_mounts_no_token(examples: dict[str, Rendered]) -> None:
    for r in examples.values():
        assert r.one("ServiceAccount")["automountServiceAccountToken"] is False
        assert _pod(r)["serviceAccountName"] == r.one("ServiceAccount")["metadata"]["name"]
        # Only spec.lifecycle's supervisor calls the API, with exactly the Role rendered beside it.
        supervised = any(o["kind"] == "Role" for o in r.objects)
        assert _pod(r)["automountServiceAccountToken"] is supervised
