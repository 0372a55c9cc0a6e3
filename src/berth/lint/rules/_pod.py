"""Shared reading of workloads: where the pod spec is, its containers, replicas, labels."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from berth.contract import ENV_LIFECYCLE, ENV_PREFIX, LABEL_COMPONENT, LABEL_NAME, TRAINING_COMPONENT
from berth.lint.model import Document, Obj, Path
from berth.quantity import quantity_or_none
from berth.rendezvous import Framework

TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"})
WORKLOAD_KINDS = TEMPLATE_KINDS | {"Pod", "CronJob"}
# A DaemonSet runs one pod per node: treat it as "many replicas".
DAEMONSET_REPLICAS = 2
RANK_ENV = frozenset({"TF_CONFIG", "RANK", "NODE_RANK", "JOB_COMPLETION_INDEX", "OMPI_COMM_WORLD_RANK"})
RENDEZVOUS_ENV = frozenset(
    {"TF_CONFIG", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "NODE_RANK", "JAX_COORDINATOR_ADDRESS"}
)
RENDEZVOUS_FRAMEWORKS = frozenset(f.value for f in Framework if f is not Framework.NONE)
# The env berth renders into each pod naming its framework (the rendezvous formula reads it).
FRAMEWORK_ENV = f"{ENV_PREFIX}FRAMEWORK"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_spec(doc: Document) -> tuple[Obj, Path] | None:
    """The pod spec of a workload and its key path, or None for other kinds."""
    if "pod_spec" not in doc.memo:
        doc.memo["pod_spec"] = _pod_spec(doc)
    found: tuple[Obj, Path] | None = doc.memo["pod_spec"]
    return found


def _pod_spec(doc: Document) -> tuple[Obj, Path] | None:
    obj = doc.obj
    kind = doc.kind
    if kind == "Pod":
        return _dict(obj.get("spec")), ("spec",)
    if kind == "CronJob":
        spec = _dict(_dict(_dict(_dict(obj.get("spec")).get("jobTemplate")).get("spec")).get("template"))
        return _dict(spec.get("spec")), ("spec", "jobTemplate", "spec", "template", "spec")
    if kind in TEMPLATE_KINDS:
        template = _dict(_dict(obj.get("spec")).get("template"))
        return _dict(template.get("spec")), ("spec", "template", "spec")
    return None


def template_metadata(doc: Document) -> Mapping[str, Any]:
    """Metadata of the pods a workload creates (the object's own for a Pod)."""
    if doc.kind == "Pod":
        return doc.metadata
    if doc.kind == "CronJob":
        job = _dict(_dict(doc.obj.get("spec")).get("jobTemplate"))
        return _dict(_dict(_dict(job.get("spec")).get("template")).get("metadata"))
    return _dict(_dict(_dict(doc.obj.get("spec")).get("template")).get("metadata"))


def pod_labels(doc: Document) -> dict[str, str]:
    if "pod_labels" not in doc.memo:
        labels = template_metadata(doc).get("labels")
        doc.memo["pod_labels"] = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    found: dict[str, str] = doc.memo["pod_labels"]
    return found


def replicas(doc: Document) -> int:
    """How many pods run at once (Job parallelism, one per node for a DaemonSet)."""
    spec = _dict(doc.obj.get("spec"))
    kind = doc.kind
    if kind in {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}:
        value = spec.get("replicas", 1)
    elif kind == "Job":
        value = spec.get("parallelism", 1)
    elif kind == "CronJob":
        value = _dict(_dict(spec.get("jobTemplate")).get("spec")).get("parallelism", 1)
    elif kind == "DaemonSet":
        value = DAEMONSET_REPLICAS
    else:
        value = 1
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def containers(spec: Obj, base: Path, *, init: bool = True) -> Iterator[tuple[Obj, Path]]:
    """Each container (and init container) with its key path."""
    keys = ("containers", "initContainers") if init else ("containers",)
    for key in keys:
        for i, container in enumerate(_list(spec.get(key))):
            if isinstance(container, dict):
                yield container, (*base, key, i)


def pod_containers(doc: Document, *, init: bool = True) -> Iterator[tuple[Obj, Path]]:
    """Each container of a workload's pod template with its key path; nothing for other kinds."""
    found = pod_spec(doc)
    if found is not None:
        yield from containers(*found, init=init)


def env_vars(container: Obj, path: Path) -> Iterator[tuple[Obj, Path]]:
    for i, var in enumerate(_list(container.get("env"))):
        if isinstance(var, dict):
            yield var, (*path, "env", i)


def supervised(container: Obj, path: Path) -> bool:
    """Whether the container runs under ``berth run``'s supervisor (berth renders ``BERTH_LIFECYCLE`` for it)."""
    return any(var.get("name") == ENV_LIFECYCLE for var, _ in env_vars(container, path))


def resources(container: Obj) -> tuple[dict[str, Any], dict[str, Any]]:
    """(requests, limits) of a container."""
    res = _dict(container.get("resources"))
    return _dict(res.get("requests")), _dict(res.get("limits"))


def is_gpu_resource(name: str) -> bool:
    """Extended resources for accelerators (nvidia.com/gpu, MIG slices, amd.com/gpu, ...)."""
    return name.endswith("/gpu") or name.startswith("nvidia.com/mig-") or name == "habana.ai/gaudi"


def gpu_count(container: Obj) -> float:
    requests, limits = resources(container)
    total = 0.0
    for source in (limits, requests):
        for name, value in source.items():
            if is_gpu_resource(str(name)):
                total = max(total, quantity_or_none(value) or 0.0)
    return total


def uses_gpus(doc: Document) -> bool:
    return any(gpu_count(c) > 0 for c, _ in pod_containers(doc))


def env_names(doc: Document) -> set[str]:
    return {str(v.get("name")) for c, p in pod_containers(doc) for v, _ in env_vars(c, p)}


def framework(doc: Document) -> str | None:
    """The distributed framework a workload rendezvouses with, when its env or labels say so."""
    found = pod_spec(doc)
    if found is None:
        return None
    for container, path in containers(*found):
        for var, _ in env_vars(container, path):
            if var.get("name") == FRAMEWORK_ENV and str(var.get("value", "")) in RENDEZVOUS_FRAMEWORKS:
                return str(var["value"])
    names = env_names(doc)
    if "TF_CONFIG" in names:
        return "tensorflow"
    if names & RENDEZVOUS_ENV:
        return "pytorch"
    label = pod_labels(doc).get(LABEL_NAME, "")
    return label if label in RENDEZVOUS_FRAMEWORKS else None


def is_training(doc: Document) -> bool:
    """A workload that trains: GPUs, a rendezvous framework, or berth's training component label (memoised)."""
    if "is_training" not in doc.memo:
        doc.memo["is_training"] = (
            uses_gpus(doc) or framework(doc) is not None or pod_labels(doc).get(LABEL_COMPONENT) == TRAINING_COMPONENT
        )
    found: bool = doc.memo["is_training"]
    return found


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Label-selector semantics (matchLabels and matchExpressions); an empty selector matches all."""
    if not isinstance(selector, dict):
        return False
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in _list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            return False
        key, op = str(expr.get("key")), expr.get("operator")
        values = {str(v) for v in _list(expr.get("values"))}
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def volume_mounts(spec: Obj, base: Path) -> Iterator[tuple[Obj, Obj, Path]]:
    """(container, mount, mount path) for every volumeMount of every container."""
    for container, path in containers(spec, base):
        for i, mount in enumerate(_list(container.get("volumeMounts"))):
            if isinstance(mount, dict):
                yield container, mount, (*path, "volumeMounts", i)


def volumes(spec: Obj, base: Path) -> Iterator[tuple[Obj, Path]]:
    for i, volume in enumerate(_list(spec.get("volumes"))):
        if isinstance(volume, dict):
            yield volume, (*base, "volumes", i)


def pod_volumes(doc: Document) -> Iterator[tuple[Obj, Path]]:
    """Each volume of a workload's pod template with its key path; nothing for other kinds."""
    found = pod_spec(doc)
    if found is not None:
        yield from volumes(*found)


def claim_templates(doc: Document) -> Iterator[tuple[Obj, Path]]:
    """A StatefulSet's volumeClaimTemplates with their paths."""
    if doc.kind != "StatefulSet":
        return
    for i, vct in enumerate(_list(_dict(doc.obj.get("spec")).get("volumeClaimTemplates"))):
        if isinstance(vct, dict):
            yield vct, ("spec", "volumeClaimTemplates", i)


def storage_request(claim_spec: Obj) -> float | None:
    """Requested bytes of a PVC spec."""
    requests = _dict(_dict(claim_spec.get("resources")).get("requests"))
    return quantity_or_none(requests.get("storage")) if "storage" in requests else None


def tf_config(value: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def security_context(obj: Obj) -> dict[str, Any]:
    return _dict(obj.get("securityContext"))


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a mapping, else an empty dict (schema errors are reported elsewhere)."""
    return _dict(value)


def as_list(value: Any) -> list[Any]:
    """The value when it is a list, else an empty list."""
    return _list(value)
