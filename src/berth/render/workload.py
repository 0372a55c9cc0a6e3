"""The workload: namespace, service account, headless Service, StatefulSet, PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from berth import contract
from berth.contract import (
    ANNOTATION_CHECKPOINT_VOLUME,
    ANNOTATION_TIER,
    ANNOTATION_VOLCANO_MIN_MEMBER,
    ANNOTATION_VOLCANO_QUEUE,
    LABEL_KUEUE_QUEUE,
    SHM_PATH,
    SHM_VOLUME,
    TRAINER_CONTAINER,
    VOLCANO_SCHEDULER,
)
from berth.render import lifecycle
from berth.render.identity import pod_labels, service_account_annotations
from berth.render.labels import labels, meta, selector
from berth.render.storage import shared_read_only
from berth.rendezvous import Framework, wrap_command
from berth.spec import overlay
from berth.spec.datasets import targets
from berth.spec.model import EnvSource, TrainingCluster

GPU = "nvidia.com/gpu"
# A volume that may hold an in-flight checkpoint must not be re-chowned on every start: with
# OnRootMismatch the kubelet only walks the tree when the root's ownership is wrong.
FS_GROUP_CHANGE_POLICY = "OnRootMismatch"


def namespace(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The namespace, with Pod Security ``restricted`` warnings and audit (berth's pods pass it).

    Not ``enforce``: server-side apply would add it to a namespace that already exists and
    may hold other workloads; enforcing there is the namespace owner's decision.

    Only labels every cluster in the namespace agrees on: several clusters apply this one object
    with one field manager, so a per-cluster label or annotation (instance, framework, the spec's
    own) would be rewritten by each apply, and the operator would report drift on every resync.
    """
    if spec.namespace == "default":
        return []
    md = {
        "name": spec.namespace,
        "labels": {
            contract.LABEL_PART_OF: contract.PART_OF,
            contract.LABEL_MANAGED_BY: contract.MANAGED_BY,
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        },
    }
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": md}]


def service_account_name(spec: TrainingCluster) -> str:
    """The pods' ServiceAccount (berth's own unless the spec names one)."""
    return spec.spec.service_account_name or spec.name


def service_account(spec: TrainingCluster) -> list[dict[str, Any]]:
    """A ServiceAccount with no API token mounted: training pods do not call the API.

    ``spec.identity`` annotates it for the cloud's webhook, which projects a token of its own
    (render/identity.py): the API token stays unmounted.
    """
    if spec.spec.service_account_name:
        return []
    md = meta(spec, spec.name, "training")
    cloud = service_account_annotations(spec)
    if cloud:
        md["annotations"] = {**md.get("annotations", {}), **cloud}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": md,
            "automountServiceAccountToken": False,
        }
    ]


def headless_service(spec: TrainingCluster) -> dict[str, Any]:
    """Stable DNS names ``<pod>.<service>``; published before readiness so peers find each other."""
    ports = [{"name": "training", "port": spec.spec.port, "targetPort": "training", "protocol": "TCP"}]
    if spec.spec.monitoring.prometheus:
        ports.append({"name": "metrics", "port": spec.spec.metrics_port, "targetPort": "metrics", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(spec, spec.service_name, "training"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector(spec),
            "ports": ports,
        },
    }


def _resources(spec: TrainingCluster) -> dict[str, Any]:
    req = dict(spec.spec.resources.requests)
    lim = dict(spec.spec.resources.limits)
    # Extended resources cannot be overcommitted: the request must equal the limit.
    if GPU in req or GPU in lim:
        gpus = lim[GPU] if GPU in lim else req[GPU]
        req[GPU] = lim[GPU] = gpus
    out: dict[str, Any] = {}
    if req:
        out["requests"] = {k: str(v) for k, v in req.items()}
    if lim:
        out["limits"] = {k: str(v) for k, v in lim.items()}
    return out


def s3_env(secret_name: str | None, endpoint: str | None, region: str | None) -> list[dict[str, Any]]:
    """boto3's standard env for an S3 store (the archive, a dataset): keys from a Secret, never a literal.

    Without a Secret no keys are set, so boto3 finds the pod's cloud identity; the endpoint and
    region are literals when the spec names them, else optional keys of the Secret.
    """
    env: list[dict[str, Any]] = []
    for key, optional in (
        ("AWS_ACCESS_KEY_ID", False),
        ("AWS_SECRET_ACCESS_KEY", False),
        ("AWS_ENDPOINT_URL", True),
        ("AWS_REGION", True),
    ):
        if key == "AWS_ENDPOINT_URL" and endpoint:
            env.append({"name": key, "value": endpoint})
        elif key == "AWS_REGION" and region:
            env.append({"name": key, "value": region})
        elif secret_name:
            ref: dict[str, Any] = {"name": secret_name, "key": key}
            if optional:
                ref["optional"] = True
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def _env(spec: TrainingCluster) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": "POD_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
        },
    ]
    env += [{"name": k, "value": v} for k, v in spec.rendezvous.env().items()]
    ckpt = spec.checkpoint_dir()
    if ckpt:
        env.append({"name": "BERTH_CHECKPOINT_DIR", "value": ckpt})
    env.append({"name": "BERTH_METRICS_PORT", "value": str(spec.spec.metrics_port)})
    archive = spec.spec.archive
    if archive:
        env.append({"name": "BERTH_ARCHIVE_URL", "value": archive.url})
        env += s3_env(archive.secret_name, archive.endpoint, archive.region)
    if spec.spec.lifecycle is not None:
        env += lifecycle.env(spec)
    for name, value in spec.spec.env.items():
        if isinstance(value, EnvSource):
            env.append({"name": name, "valueFrom": value.value_from})
        else:
            env.append({"name": name, "value": value})
    return env


# Pod Security "restricted" for every container berth writes; a sidecar's own settings win.
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod_volumes(spec: TrainingCluster) -> list[dict[str, Any]]:
    s = spec.spec
    # A dataset's volume is read-only in the trainers' mounts only: a read-only pod volume gets no fsGroup
    # ownership, and the kubelet sets ownership on a node's first mount alone, which may be a trainer's,
    # so the populate Job could not write (docs/storage.md).
    filled = {t.volume for t in targets(spec) if t.shared}
    out = [
        {
            "name": n,
            "persistentVolumeClaim": {"claimName": sv.claim_name, "readOnly": shared_read_only(sv) and n not in filled},
        }
        for n, sv in s.shared_volumes.items()
    ]
    for name, vol in s.pod_volumes.items():
        source = vol.source()
        assert source is not None  # the spec checks refuse a volume without one
        out.append({"name": name, source[0]: source[1]})
    if s.shm:
        out.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": s.shm}})
    out += lifecycle.volumes(spec)
    return out


def _extra_containers(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Init containers, then native sidecars (restartPolicy Always); the trainer's image and pull policy by default."""
    out = []
    for container, sidecar in [(c, False) for c in spec.spec.init_containers] + [(c, True) for c in spec.spec.sidecars]:
        rendered = {"name": container["name"], "image": spec.spec.image}
        if "image" not in container and spec.spec.image_pull_policy:
            # The trainer's image, pulled as the trainer's: with Always and a moved tag, the same code in both.
            rendered["imagePullPolicy"] = spec.spec.image_pull_policy
        if sidecar:
            rendered["restartPolicy"] = "Always"
        rendered.update({k: v for k, v in container.items() if k not in ("securityContext", "restartPolicy")})
        rendered["securityContext"] = overlay.merge(CONTAINER_SECURITY, container.get("securityContext") or {})
        out.append(rendered)
    return out


def _container(spec: TrainingCluster) -> dict[str, Any]:
    s = spec.spec
    ports = [{"name": "training", "containerPort": s.port, "protocol": "TCP"}]
    if s.monitoring.prometheus:
        ports.append({"name": "metrics", "containerPort": s.metrics_port, "protocol": "TCP"})
    if s.lifecycle is not None:
        ports.append({"name": "gang", "containerPort": s.lifecycle.gang_port, "protocol": "TCP"})
    mounts: list[dict[str, Any]] = [{"name": n, "mountPath": v.mount_path} for n, v in s.volumes.items()]
    for name, sv in s.shared_volumes.items():
        mount: dict[str, Any] = {"name": name, "mountPath": sv.mount_path}
        if shared_read_only(sv):
            mount["readOnly"] = True
        mounts.append(mount)
    for name, pv in s.pod_volumes.items():
        mount = {"name": name, "mountPath": pv.mount_path}
        if pv.read_only if pv.read_only is not None else pv.csi is None:
            mount["readOnly"] = True
        if pv.sub_path:
            mount["subPath"] = pv.sub_path
        mounts.append(mount)
    if s.shm:
        mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    mounts += lifecycle.mounts(spec)
    container: dict[str, Any] = {"name": TRAINER_CONTAINER, "image": s.image}
    if s.image_pull_policy:
        container["imagePullPolicy"] = s.image_pull_policy
    if s.command and s.lifecycle is not None:
        container["command"] = lifecycle.command(spec)
    elif s.command and s.framework is not Framework.NONE:
        container["command"] = wrap_command(s.framework, s.command)
    elif s.command:
        container["command"] = list(s.command)
    if s.args:
        container["args"] = list(s.args)
    container.update({"ports": ports, "env": _env(spec)})
    if s.env_from:
        container["envFrom"] = list(s.env_from)
    container.update({"resources": _resources(spec), "securityContext": overlay.merge(CONTAINER_SECURITY, {})})
    for kind in ("startup", "readiness", "liveness"):
        probe = getattr(s.probes, kind)
        if probe is not None:
            container[f"{kind}Probe"] = probe
    if mounts:
        container["volumeMounts"] = mounts
    return container


def pod_security(spec: TrainingCluster) -> dict[str, Any]:
    """The pod securityContext of every pod berth renders (trainers, a dataset's populate Job)."""
    sc = spec.spec.security_context
    out: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": sc.run_as_user}
    if sc.run_as_group is not None:
        out["runAsGroup"] = sc.run_as_group
    # Without fsGroup a non-root user cannot write to a fresh volume (the guide's "permission issues").
    out["fsGroup"] = sc.fs_group if sc.fs_group is not None else (sc.run_as_group or sc.run_as_user)
    out["fsGroupChangePolicy"] = FS_GROUP_CHANGE_POLICY
    out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out


def _scheduling(spec: TrainingCluster, pod: dict[str, Any]) -> None:
    sch = spec.spec.scheduling
    if sch.node_selector:
        pod["nodeSelector"] = dict(sch.node_selector)
    tolerations = [t.model_dump(exclude_none=True, by_alias=True) for t in sch.tolerations]
    if sch.gpu_tolerations and spec.gpus_per_pod > 0 and not any(t.get("key") == GPU for t in tolerations):
        tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        pod["tolerations"] = tolerations
    if sch.spread != "none" and spec.spec.replicas > 1:
        when = "DoNotSchedule" if sch.spread == "required" else "ScheduleAnyway"
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": unsat,
                "labelSelector": {"matchLabels": selector(spec)},
            }
            for key, unsat in (("topology.kubernetes.io/zone", "ScheduleAnyway"), ("kubernetes.io/hostname", when))
        ]
    if sch.affinity:
        pod["affinity"] = sch.affinity
    if sch.priority_class_name:
        pod["priorityClassName"] = sch.priority_class_name
    scheduler = sch.scheduler_name or (VOLCANO_SCHEDULER if sch.queue and sch.queue.volcano else None)
    if scheduler:
        pod["schedulerName"] = scheduler


def claim_template(spec: TrainingCluster, name: str) -> dict[str, Any]:
    """The volumeClaimTemplate of per-replica volume ``name`` (PVCs ``<name>-<sts>-<ordinal>``)."""
    vol = spec.spec.volumes[name]
    annotations = {}
    tier = spec.tier_of(vol.storage_class)
    if tier:
        annotations[ANNOTATION_TIER] = tier.value
    if spec.checkpoint_volume() == name:
        annotations[ANNOTATION_CHECKPOINT_VOLUME] = "true"
    # The contract labels on every claim the StatefulSet creates: gc and lint select them by these.
    md: dict[str, Any] = {"name": name, "labels": labels(spec, "training")}
    if annotations:
        md["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": md,
        "spec": {
            "accessModes": [vol.access_mode],
            "storageClassName": vol.storage_class,
            "resources": {"requests": {"storage": vol.size}},
        },
    }


def statefulset(spec: TrainingCluster) -> dict[str, Any]:
    """One pod per replica with its own claims; Parallel start, because rendezvous waits for all peers."""
    s = spec.spec
    pod: dict[str, Any] = {
        "serviceAccountName": service_account_name(spec),
        # The supervisor (spec.lifecycle) patches its pod and scales its StatefulSet: render/lifecycle.py.
        "automountServiceAccountToken": s.lifecycle is not None,
        "securityContext": pod_security(spec),
        "terminationGracePeriodSeconds": lifecycle.termination_grace(spec),
        "containers": [_container(spec)],
    }
    # Function-level: render/datasets.py builds its containers from this module's pieces.
    from berth.render.datasets import init_containers

    extra = init_containers(spec) + _extra_containers(spec)
    if extra:
        pod["initContainers"] = extra
    if s.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    _scheduling(spec, pod)
    volumes = _pod_volumes(spec)
    if volumes:
        pod["volumes"] = volumes
    template_md: dict[str, Any] = {"labels": {**labels(spec, "training"), **pod_labels(spec)}}
    annotations: dict[str, str] = {}
    if s.monitoring.prometheus:
        annotations.update(
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(s.metrics_port),
                "prometheus.io/path": "/metrics",
            }
        )
    queue = s.scheduling.queue
    if queue and queue.volcano:
        annotations[ANNOTATION_VOLCANO_QUEUE] = queue.volcano
    if annotations:
        template_md["annotations"] = annotations
    template: dict[str, Any] = {"metadata": template_md, "spec": pod}
    if s.pod_template is not None:
        template = overlay.merge(template, s.pod_template)
    body: dict[str, Any] = {
        "serviceName": spec.service_name,
        "replicas": s.replicas,
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector(spec)},
        "updateStrategy": {"type": "RollingUpdate"},
        "persistentVolumeClaimRetentionPolicy": {
            "whenScaled": s.volume_retention.when_scaled,
            "whenDeleted": s.volume_retention.when_deleted,
        },
        "template": template,
    }
    if s.volumes:
        body["volumeClaimTemplates"] = [claim_template(spec, n) for n in s.volumes]
    # Kueue admits the StatefulSet by its label; Volcano gangs the pods of one owner by its annotation,
    # so no pod starts until every replica can be placed (rendezvous waits for all of them anyway).
    kueue = {LABEL_KUEUE_QUEUE: queue.kueue} if queue and queue.kueue else None
    gang = {ANNOTATION_VOLCANO_MIN_MEMBER: str(s.replicas)} if queue and queue.volcano else None
    md = meta(spec, spec.name, "training", extra_labels=kueue, annotations=gang)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": md, "spec": body}


def disruption_budget(spec: TrainingCluster) -> list[dict[str, Any]]:
    """A PDB that protects training from drains without blocking them when a pod is already unhealthy."""
    d = spec.spec.disruption
    budget: dict[str, Any] = {"selector": {"matchLabels": selector(spec)}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    if d.min_available is not None:
        budget["minAvailable"] = d.min_available
    else:
        budget["maxUnavailable"] = d.max_unavailable if d.max_unavailable is not None else 1
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(spec, f"{spec.name}-pdb", "training"),
            "spec": budget,
        }
    ]
