"""Invariants of rendering, for any valid spec hypothesis can build."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.render import render_all
from berth.rendezvous import RendezvousParams
from berth.spec.model import TrainingCluster
from berth.spec.validate import check

from .render_helpers import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, kube_validator, metadata_problems

FRAMEWORKS = ["tensorflow", "pytorch", "horovod", "jax", "none"]
GPU = "nvidia.com/gpu"

# Names that start with a letter (Service names must), up to the limits berth enforces.
cluster_names = st.from_regex(r"\A[a-z]([-a-z0-9]{0,50}[a-z0-9])?\Z")
labels63 = st.from_regex(r"\A[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
sizes = st.sampled_from(["1Gi", "100Gi", "500Gi", "1Ti", "16Ti", "1500G"])


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid TrainingCluster document (as a plain dict, like YAML gives)."""
    framework = draw(st.sampled_from(FRAMEWORKS))
    replicas = draw(st.one_of(st.integers(1, 24), st.integers(9990, 10000)))
    names = draw(st.lists(labels63, min_size=0, max_size=5, unique=True))
    split = draw(st.integers(0, len(names)))
    gpus = draw(st.integers(0, 8))
    spec: dict[str, Any] = {
        "framework": framework,
        "replicas": replicas,
        "port": draw(st.integers(1024, 9000)),
        "image": "busybox",
        "command": ["python", "train.py"],
        "storageClasses": {
            "fast": {"provider": "aws-ebs", "type": "gp3", "tier": "hot"},
            "bulk": {"provider": draw(st.sampled_from(["gcp-pd", "azure-disk", "local"])), "tier": "warm"},
            "shared": {"existing": True},
        },
        "volumes": {
            n: {"mountPath": f"/v/{i}", "size": draw(sizes), "storageClass": draw(st.sampled_from(["fast", "bulk"]))}
            for i, n in enumerate(names[:split])
        },
        "sharedVolumes": {
            n: {
                "claimName": f"{n[:50]}-claim",
                "mountPath": f"/s/{i}",
                "size": "1Ti",
                "storageClass": "shared",
                "accessMode": draw(st.sampled_from(["ReadOnlyMany", "ReadWriteMany"])),
            }
            for i, n in enumerate(names[split:])
        },
        "scheduling": {"spread": draw(st.sampled_from(["required", "preferred", "none"]))},
        "monitoring": {"serviceMonitor": draw(st.booleans()), "podMonitor": draw(st.booleans())},
    }
    if gpus:
        spec["resources"] = {"limits": {GPU: gpus}, **({"requests": {GPU: gpus}} if draw(st.booleans()) else {})}
    if draw(st.booleans()):
        spec["serviceName"] = draw(cluster_names)
    if replicas > 1 and draw(st.booleans()):
        spec["disruption"] = {"minAvailable": draw(st.integers(0, replicas - 1))}
    if spec["volumes"] and draw(st.booleans()):
        spec["backup"] = {"schedule": "0 3 * * *"}
    metadata: dict[str, Any] = {"name": draw(cluster_names)}
    if draw(st.booleans()):
        metadata["namespace"] = draw(labels63)
    doc = {"apiVersion": "berth.dev/v1alpha1", "kind": "TrainingCluster", "metadata": metadata, "spec": spec}
    # Host lists (TF_CONFIG, HOROVOD_HOSTS) cap the replicas these names allow (spec.validate refuses more).
    most = TrainingCluster.model_validate(doc).rendezvous.max_replicas()
    if replicas > most:
        spec["replicas"] = most
        if "disruption" in spec:
            spec["disruption"]["minAvailable"] = min(spec["disruption"]["minAvailable"], most - 1)
    return doc


def _load(doc: dict[str, Any]) -> TrainingCluster:
    spec = TrainingCluster.model_validate(doc)
    assert check(spec) == [], "a spec built to be valid was rejected"
    return spec


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return small.items() <= big.items()


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(specs())
def test_every_selector_selects_the_training_pods(doc: dict[str, Any]) -> None:
    objects = render_all(_load(doc))
    (sts,) = _of(objects, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    selectors = [sts["spec"]["selector"]["matchLabels"]]
    selectors += [o["spec"]["selector"] for o in _of(objects, "Service")]
    selectors += [o["spec"]["selector"]["matchLabels"] for o in _of(objects, "PodDisruptionBudget")]
    selectors += [o["spec"]["selector"]["matchLabels"] for o in _of(objects, "ServiceMonitor")]
    selectors += [o["spec"]["selector"]["matchLabels"] for o in _of(objects, "PodMonitor")]
    selectors += [o["spec"]["podSelector"]["matchLabels"] for o in _of(objects, "NetworkPolicy")]
    selectors += [
        c["labelSelector"]["matchLabels"] for c in sts["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    ]
    assert selectors and all(s and _subset(s, pod_labels) for s in selectors)
    # The Velero schedule picks up everything of this instance, pods and claims included.
    for schedule in _of(objects, "Schedule"):
        assert _subset(schedule["spec"]["template"]["labelSelector"]["matchLabels"], pod_labels)


@PROPERTY
@given(specs())
def test_names_are_valid_for_every_ordinal(doc: dict[str, Any]) -> None:
    """Pod names, PVC names ``<template>-<sts>-<ordinal>`` and the Service name, up to the last ordinal."""
    spec = _load(doc)
    objects = render_all(spec)
    (sts,) = _of(objects, "StatefulSet")
    (service,) = _of(objects, "Service")
    name, last = sts["metadata"]["name"], spec.spec.replicas - 1
    assert service["metadata"]["name"] == sts["spec"]["serviceName"] == spec.service_name
    assert DNS1035_LABEL.match(spec.service_name) and len(spec.service_name) <= 63
    # The pod name is its hostname (a label); the controller-revision-hash label is <sts>-<10 chars>.
    assert DNS1123_LABEL.match(f"{name}-{last}") and len(f"{name}-{last}") <= 63
    assert len(f"{name}-0123456789") <= 63
    for template in sts["spec"].get("volumeClaimTemplates", []):
        pvc = f"{template['metadata']['name']}-{name}-{last}"
        assert DNS1123_SUBDOMAIN.match(pvc) and len(pvc) <= 253, pvc
    params = spec.rendezvous
    host = params.host(last)
    assert len(host) <= 253 and all(DNS1123_LABEL.match(part) and len(part) <= 63 for part in host.split("."))


@PROPERTY
@given(specs())
def test_every_object_is_valid_and_unique(doc: dict[str, Any]) -> None:
    objects = render_all(_load(doc))
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(ids) == len(set(ids))
    for obj in objects:
        assert metadata_problems(obj) == []
        if obj["apiVersion"].split("/")[0] not in ("monitoring.coreos.com", "velero.io", "snapshot.storage.k8s.io"):
            kube_validator(obj["kind"], obj["apiVersion"]).validate(obj)


def _rank(params: RendezvousParams, env: dict[str, str]) -> str:
    fw = params.framework.value
    if fw == "tensorflow":
        config = json.loads(env["TF_CONFIG"])
        assert len(config["cluster"]["worker"]) == params.replicas
        return str(config["task"]["index"])
    key = {"pytorch": "NODE_RANK", "jax": "JAX_PROCESS_ID", "horovod": "HOROVOD_HOSTNAME", "none": "POD_INDEX"}[fw]
    return env[key]


@PROPERTY
@given(specs())
def test_one_distinct_rendezvous_index_per_ordinal(doc: dict[str, Any]) -> None:
    params = _load(doc).rendezvous
    ordinals = range(params.replicas) if params.replicas <= 24 else [0, 1, params.replicas // 2, params.replicas - 1]
    envs = [params.env_for(i) for i in ordinals]
    ranks = [_rank(params, env) for env in envs]
    assert len(set(ranks)) == len(ranks)
    for ordinal, env in zip(ordinals, envs, strict=True):
        assert env["POD_INDEX"] == str(ordinal)
        if params.framework.value == "pytorch":
            assert env["RANK"] == str(ordinal * max(params.gpus_per_pod, 1))
            assert env["WORLD_SIZE"] == str(params.replicas * max(params.gpus_per_pod, 1))
            assert env["MASTER_ADDR"] == params.host(0)
        if params.framework.value == "tensorflow":
            assert json.loads(env["TF_CONFIG"])["task"]["index"] == ordinal


@PROPERTY
@given(specs())
def test_gpu_request_equals_limit_and_pods_pass_restricted(doc: dict[str, Any]) -> None:
    spec = _load(doc)
    (sts,) = _of(render_all(spec), "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container.get("resources", {})
    if spec.gpus_per_pod:
        assert resources["requests"][GPU] == resources["limits"][GPU] == str(spec.gpus_per_pod)
        assert any(t.get("key") == GPU for t in pod["tolerations"])
    else:
        assert GPU not in resources.get("requests", {}) and GPU not in resources.get("limits", {})
    # Pod Security "restricted", field by field.
    psc, csc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc.get("runAsUser", 1) != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert psc["fsGroupChangePolicy"] == "OnRootMismatch" and "fsGroup" in psc
    assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"] == {"drop": ["ALL"]}
    assert csc.get("privileged", False) is False
    assert not any(k in pod for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all(
        set(v)
        <= {
            "name",
            "persistentVolumeClaim",
            "emptyDir",
            "configMap",
            "secret",
            "projected",
            "downwardAPI",
            "ephemeral",
            "csi",
        }
        for v in pod.get("volumes", [])
    )
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
