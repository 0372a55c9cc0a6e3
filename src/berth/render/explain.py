"""Plain-words explanation of a rendered stack: one line per object, what it is for."""

from __future__ import annotations

from typing import Any

from berth.contract import ANNOTATION_TIER
from berth.spec.images import python_problem
from berth.spec.model import TrainingCluster

_PAST = {"Retain": "retained", "Delete": "deleted"}


def _why(spec: TrainingCluster, obj: dict[str, Any]) -> str:
    kind, s = obj["kind"], spec.spec
    body = obj.get("spec", {})
    if kind == "Namespace":
        return "namespace for the cluster; Pod Security 'restricted' warnings and audit (berth's pods pass it)"
    if kind == "StorageClass":
        tier = obj["metadata"].get("annotations", {}).get(ANNOTATION_TIER, "?")
        params = ", ".join(f"{k}={v}" for k, v in obj.get("parameters", {}).items())
        binding = (
            "disks are created in the pod's zone (WaitForFirstConsumer)"
            if obj["volumeBindingMode"] == "WaitForFirstConsumer"
            else "volumes are created before the pod is scheduled (Immediate)"
        )
        return (
            f"{tier} tier on {obj['provisioner']} ({params or 'defaults'}); {binding}, reclaim {obj['reclaimPolicy']}"
        )
    if kind == "PersistentVolume":
        return "static NFS volume the shared claim binds to"
    if kind == "PersistentVolumeClaim":
        return (
            f"shared claim of {body['resources']['requests']['storage']} ({body['accessModes'][0]}), "
            "mounted by every replica; never garbage-collected"
        )
    if kind == "ServiceAccount":
        if s.lifecycle is not None:
            return "identity of the training pods; its token lets the supervisor patch what the Role allows"
        return "identity of the training pods, with no API token mounted"
    if kind == "Role":
        return "the supervisor's rights: patch its own pod, this StatefulSet and its scale (docs/rbac.md)"
    if kind == "RoleBinding":
        return "grants the supervisor's Role to the pods' ServiceAccount"
    if kind == "Service":
        return (
            f"headless Service: stable DNS <pod>.{obj['metadata']['name']} for rendezvous on port {s.port}, "
            "published before pods are ready"
        )
    if kind == "StatefulSet":
        vols = ", ".join(f"{n} {v.size} at {v.mount_path}" for n, v in s.volumes.items()) or "no volumes"
        fw = s.framework.value
        rdv = f"; {fw} rendezvous computed per pod at start" if fw != "none" else ""
        lc = s.lifecycle
        done = "scale to 0" if lc is not None and lc.on_complete == "scaleToZero" else "idle"
        life = (
            f"; berth run supervises the trainer: on completion {done}, gang restart up to {lc.max_restarts} times"
            + (
                " (injected; an image without python3 runs the command unsupervised: no completion, no gang restart)"
                if lc.runner == "inject"
                else " (the image's berth; an image without it runs the command unsupervised)"
            )
            if lc is not None
            else "; no spec.lifecycle: a trainer that exits 0 is restarted and a crashed rank is not restarted "
            "with its peers (docs/lifecycle.md)"
        )
        if lc is not None and (problem := python_problem(s.image)) is not None:
            life += f"; WARNING: image {s.image}: {problem}, so this one will run unsupervised"
        return (
            f"{s.replicas} pods {spec.name}-0..{s.replicas - 1}, each with its own claims ({vols}); "
            f"started in parallel{rdv}; claims {_PAST[s.volume_retention.when_scaled]} on scale-down{life}"
        )
    if kind == "PodDisruptionBudget":
        limit = (
            f"minAvailable {body['minAvailable']}"
            if "minAvailable" in body
            else f"maxUnavailable {body['maxUnavailable']}"
        )
        return f"drains keep training alive ({limit}); unhealthy pods may always be evicted"
    if kind == "NetworkPolicy":
        return "only this cluster's pods reach the training port; monitoring reaches the metrics port"
    if kind == "ConfigMap" and "binaryData" in obj:
        return "berth run as a zipapp (lifecycle.runner: inject), mounted into the trainer: needs only python3 3.11+"
    if kind == "ConfigMap":
        return "Prometheus scrape config for this cluster's metrics port"
    if kind in ("ServiceMonitor", "PodMonitor"):
        return f"Prometheus Operator {kind} scraping the metrics port"
    if kind == "PrometheusRule":
        return "alerts: volumes 80%/90% full, claims Pending, pods restarting, checkpoints stale"
    if kind == "VolumeSnapshotClass":
        return f"CSI snapshot class Velero uses for the {obj['driver']} volumes"
    if kind == "Job":
        cmd = body["template"]["spec"]["containers"][0]["command"]
        return (
            f"populates a shared dataset once: berth stage {cmd[2]} into claim "
            f"{body['template']['spec']['volumes'][0]['persistentVolumeClaim']['claimName']} "
            "(resumable, verified); every trainer waits for its manifest"
        )
    if kind == "Schedule":
        tpl = body["template"]
        return f"Velero backup at '{body['schedule']}' kept {tpl['ttl']}, with volume snapshots"
    return str(kind)


def explain_objects(spec: TrainingCluster, objects: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, name, why) for each rendered object, in apply order."""
    return [(o["kind"], o["metadata"]["name"], _why(spec, o)) for o in objects]
