"""The ``TrainingCluster`` spec: a Kubernetes-style resource, so it can become a CRD later.

Field names are camelCase in YAML (like every Kubernetes object) and snake_case in
Python. Everything unknown is rejected: a misspelt field silently ignored is how
hand-written YAML goes wrong.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.alias_generators import to_camel

from berth.providers.limits import Tier
from berth.providers.presets import Provider
from berth.quantity import QuantityError, is_duration, parse_quantity
from berth.rendezvous import Framework, RendezvousParams
from berth.spec.kubeschema import KubeSchema

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CRON_ITEM = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
_CRON_FIELD = re.compile(rf"^{_CRON_ITEM}(,{_CRON_ITEM})*$")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _cluster_name(value: str) -> str:
    _dns_label(value)
    if len(value) > 52:
        raise ValueError(
            f"{value!r} is longer than 52 characters: pod names add -<ordinal> and the StatefulSet's "
            "controller-revision-hash label adds 11 more, within the 63-character label limit"
        )
    return value


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (
        (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
        or len(name) > 63
        or not (_LABEL_NAME.match(name))
    ):
        raise ValueError(
            f"{value!r} is not a valid label or annotation key: [prefix/]name, the name at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def _label_value(value: str) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise ValueError(
            f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')")
    return value


def _quantity(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a quantity such as 100Gi, got {type(value).__name__}")
    try:
        # A YAML float (cpu: 0.5) is checked in its rendered form, which rejects .inf and .nan.
        parse_quantity(str(value) if isinstance(value, float) else value)
    except QuantityError as err:
        raise ValueError(str(err)) from None
    return str(value)


def _positive_size(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise ValueError(f"size must be greater than zero, got {value!r}")
    return value


# Mounting a volume here would hide what the container needs to run: the image itself, the kernel's
# file systems, or the service-account token the kubelet mounts (``/var/run`` is ``/run`` on most images).
_RESERVED_MOUNTS = ("/proc", "/sys", "/var/run/secrets", "/run/secrets")


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path: mount paths start with '/'")
    if ":" in value:
        raise ValueError(f"{value!r} must not contain ':'")
    path = "/" + "/".join(part for part in value.split("/") if part)
    if path == "/":
        raise ValueError("a volume mounted at / would hide the image's whole file system: use a directory")
    for reserved in _RESERVED_MOUNTS:
        if path == reserved or path.startswith(reserved + "/"):
            raise ValueError(f"{value!r} is under {reserved}, which the container runtime or kubelet mounts itself")
    return value.rstrip("/")


def _duration(value: str) -> str:
    if not is_duration(value):
        raise ValueError(f"{value!r} is not a duration: use Go's form, e.g. 720h, 30m, 1h30m")
    return value


# Field ranges and names of the standard cron parser Velero uses (robfig/cron v3).
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_CRON_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {
        m: i
        for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
    },
    {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
)


def _cron(value: str) -> str:
    text = value.strip()
    if text in _CRON_MACROS or (text.startswith("@every ") and is_duration(text.removeprefix("@every "))):
        return value
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"{value!r} is not a cron schedule: five fields 'minute hour day month weekday', e.g. '0 2 * * *'"
        )
    for field, (what, low, high), names in zip(fields, _CRON_RANGES, _CRON_NAMES, strict=True):
        for bound in re.findall(r"[0-9A-Za-z]+", field.split("/")[0]):
            number = names.get(bound.lower()) if not bound.isdigit() else int(bound)
            if number is None or not low <= number <= high:
                raise ValueError(f"{value!r}: {what} {bound!r} is outside {low}-{high}")
    return value


# Before the type check, so `cpu: true` gets the quantity message rather than one line per union member.
Quantity = Annotated[StrictStr | StrictInt | StrictFloat, BeforeValidator(_quantity)]
Size = Annotated[StrictStr, AfterValidator(_quantity), AfterValidator(_positive_size)]
DnsLabel = Annotated[StrictStr, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[StrictStr, AfterValidator(_dns_subdomain)]
MountPath = Annotated[StrictStr, AfterValidator(_absolute_path)]
Duration = Annotated[StrictStr, AfterValidator(_duration)]
Cron = Annotated[StrictStr, AfterValidator(_cron)]
LabelKey = Annotated[StrictStr, AfterValidator(_label_key)]
LabelValue = Annotated[StrictStr, AfterValidator(_label_value)]


def _int_or_percent(value: int | str) -> int | str:
    # The API server takes a non-negative count or a percentage up to 100% (PDB validation).
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{value} is negative: use a count of pods (0 or more) or a percentage")
    if isinstance(value, str) and (not re.match(r"^[0-9]+%$", value) or int(value[:-1]) > 100):
        raise ValueError(f"{value!r} is neither a count of pods nor a percentage from 0% to 100%")
    return value


IntOrPercent = Annotated[StrictInt | StrictStr, AfterValidator(_int_or_percent)]


# Kubernetes core/v1 objects: mappings here, checked against the official schema by spec/validate.py
# (spec/kubeschema.py), so an error points at the field inside them.
KAffinity = Annotated[dict[StrictStr, Any], KubeSchema("Affinity")]
KCSIVolumeSource = Annotated[dict[StrictStr, Any], KubeSchema("CSIVolumeSource")]
KConfigMapVolumeSource = Annotated[dict[StrictStr, Any], KubeSchema("ConfigMapVolumeSource")]
KContainer = Annotated[dict[StrictStr, Any], KubeSchema("Container")]
KEnvFromSource = Annotated[dict[StrictStr, Any], KubeSchema("EnvFromSource")]
KEnvVarSource = Annotated[dict[StrictStr, Any], KubeSchema("EnvVarSource")]
KPodTemplateSpec = Annotated[dict[StrictStr, Any], KubeSchema("PodTemplateSpec")]
KProbe = Annotated[dict[StrictStr, Any], KubeSchema("Probe")]
KProjectedVolumeSource = Annotated[dict[StrictStr, Any], KubeSchema("ProjectedVolumeSource")]
KSecretVolumeSource = Annotated[dict[StrictStr, Any], KubeSchema("SecretVolumeSource")]


class _Model(BaseModel):
    """Base: camelCase aliases, unknown fields rejected, values validated on assignment."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
        use_enum_values=False,
    )


AccessMode = Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
RetentionPolicy = Literal["Retain", "Delete"]


class Metadata(_Model):
    """Name and namespace of the training cluster; the name prefixes every pod and claim."""

    name: Annotated[StrictStr, AfterValidator(_cluster_name), Field(json_schema_extra={"maxLength": 52})]
    namespace: DnsLabel = "default"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, StrictStr] = Field(default_factory=dict)


class Resources(_Model):
    """Container requests and limits, as in a Pod, keys such as ``cpu``, ``memory``, ``nvidia.com/gpu``."""

    model_config = ConfigDict(alias_generator=None)

    requests: dict[StrictStr, Quantity] = Field(default_factory=dict)
    limits: dict[StrictStr, Quantity] = Field(default_factory=dict)


class StorageClassSpec(_Model):
    """A StorageClass berth creates from a provider preset, or one that already exists (``existing: true``)."""

    existing: StrictBool = False
    provider: Provider | None = None
    tier: Tier = Field(default=Tier.WARM, description="hot: checkpoints (reclaim Retain); warm: datasets")
    type: StrictStr | None = Field(default=None, description="disk type (gp3, io2, pd-ssd, PremiumV2_LRS, ...)")
    iops: StrictInt | None = Field(default=None, ge=1)
    throughput: StrictInt | None = Field(default=None, ge=1, description="MiB/s")
    iops_per_gb: StrictInt | None = Field(default=None, alias="iopsPerGB", ge=1)
    encrypted: StrictBool | None = None
    kms_key_id: StrictStr | None = None
    fs_type: StrictStr | None = None
    server: StrictStr | None = Field(default=None, description="nfs: server address")
    share: StrictStr | None = Field(default=None, description="nfs: exported path")
    cluster_id: StrictStr | None = Field(default=None, alias="clusterID", description="ceph: cluster id")
    pool: StrictStr | None = Field(default=None, description="ceph-rbd: pool")
    fs_name: StrictStr | None = Field(default=None, description="cephfs: file system name")
    provisioner: DnsSubdomain | None = Field(default=None, description="csi: the CSI driver name")
    parameters: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    reclaim_policy: RetentionPolicy | None = None
    volume_binding_mode: Literal["WaitForFirstConsumer", "Immediate"] = "WaitForFirstConsumer"
    allow_volume_expansion: StrictBool = True
    mount_options: list[StrictStr] = Field(default_factory=list)
    default: StrictBool = Field(default=False, description="mark as the cluster's default StorageClass")


class VolumeSpec(_Model):
    """A per-replica volume: one PVC per pod from a volumeClaimTemplate, kept across restarts."""

    mount_path: MountPath
    size: Size
    storage_class: StrictStr
    access_mode: AccessMode = "ReadWriteOnce"
    checkpoints: StrictBool | None = Field(
        default=None, description="holds checkpoints (default: the first volume on a hot tier)"
    )


class NfsSource(_Model):
    """A static NFS export to bind a shared claim to, instead of dynamic provisioning."""

    server: StrictStr
    path: MountPath


class SharedVolumeSpec(_Model):
    """One claim mounted by every replica, typically a read-only dataset."""

    claim_name: DnsSubdomain
    mount_path: MountPath
    size: Size | None = None
    storage_class: StrictStr | None = None
    access_mode: AccessMode = "ReadOnlyMany"
    read_only: StrictBool | None = Field(default=None, description="default: true for ReadOnlyMany")
    existing: StrictBool = Field(default=False, description="the claim exists; berth only mounts it")
    nfs: NfsSource | None = None


_DATASET_SOURCE = re.compile(r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?|https?://[^/\s]+/\S+)$")


def _dataset_source(value: str) -> str:
    if not _DATASET_SOURCE.match(value):
        raise ValueError(
            f"{value.split('?')[0]!r} is neither s3://bucket/prefix nor an http(s):// URL of a file "
            "(a bucket name is 3-63 lower-case letters, digits, '.' or '-')"
        )
    return value


class DatasetSpec(_Model):
    """Data staged into a volume before training: a populate Job for a shared volume, an init container per pod.

    See docs/storage.md. Credentials come from a Secret's ``AWS_*`` keys, or (no ``secretName``) from the
    pod's own cloud identity; never from this file.
    """

    source: Annotated[StrictStr, AfterValidator(_dataset_source)] = Field(
        description="s3://bucket/prefix (every object under it) or one https:// file"
    )
    into: DnsLabel = Field(description="a spec.sharedVolumes entry (filled once) or a spec.volumes entry (each pod)")
    path: StrictStr = Field(default="", description="directory inside the volume (default: its root)")
    shard: Literal["whole", "perRank"] = Field(
        default="whole", description="perRank: pod i of n gets files i, i+n, … of the sorted listing (spec.volumes)"
    )
    secret_name: DnsSubdomain | None = Field(
        default=None, description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: the pod's identity)"
    )
    endpoint: StrictStr | None = Field(default=None, description="for non-AWS stores (MinIO, SeaweedFS)")
    region: StrictStr | None = None
    concurrency: StrictInt | None = Field(
        default=None, ge=1, le=256, description="files in flight (default: berth stage's, 64 for small files, else 16)"
    )
    image: StrictStr | None = Field(default=None, description="image with berth in it (default: spec.image)")


class Archive(_Model):
    """Cold tier: an S3-compatible object store, credentials from a Secret or spec.identity (never this file)."""

    url: Annotated[StrictStr, Field(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")]
    secret_name: DnsSubdomain | None = Field(
        default=None, description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: spec.identity)"
    )
    endpoint: StrictStr | None = Field(default=None, description="for non-AWS stores (MinIO, SeaweedFS)")
    region: StrictStr | None = None


_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([\x21-\x7e]{0,510}/)?[\w+=,.@-]{1,64}$")
_GCP_SA = re.compile(
    r"^[a-z0-9][a-z0-9-]{4,28}[a-z0-9]@([a-z][a-z0-9-]{4,28}[a-z0-9]\.iam|developer)\.gserviceaccount\.com$"
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _role_arn(value: str) -> str:
    if _ROLE_ARN.match(value):
        return value
    kind = re.match(r"^arn:aws[\w-]*:(iam|sts)::[0-9]{12}:([\w-]+)/", value)
    what = f"an IAM {kind.group(2)} ARN" if kind else "not an IAM role ARN"
    raise ValueError(f"{value!r} is {what}; IRSA assumes a role: arn:aws:iam::<12-digit account>:role/<name>")


def _gcp_service_account(value: str) -> str:
    if not _GCP_SA.match(value):
        raise ValueError(
            f"{value!r} is not a Google service account email (NAME@PROJECT.iam.gserviceaccount.com); "
            "Workload Identity maps the pods' Kubernetes ServiceAccount to it"
        )
    return value


def _uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError(f"{value!r} is not a UUID (the managed identity's or app registration's client ID)")
    return value


class Identity(_Model):
    """The pods' cloud identity, used by the archive and datasets without a secretName (docs/storage.md)."""

    provider: Literal["aws", "eks-pod-identity", "gcp", "azure"] = Field(
        description="aws: EKS IRSA (roleArn); eks-pod-identity: an association made outside the cluster "
        "(nothing rendered); gcp: GKE Workload Identity (serviceAccount); azure: Azure Workload Identity (clientId)"
    )
    role_arn: Annotated[StrictStr, AfterValidator(_role_arn)] | None = Field(
        default=None, description="aws: the IAM role the pods assume (eks.amazonaws.com/role-arn)"
    )
    service_account: Annotated[StrictStr, AfterValidator(_gcp_service_account)] | None = Field(
        default=None, description="gcp: the Google service account email (iam.gke.io/gcp-service-account)"
    )
    client_id: Annotated[StrictStr, AfterValidator(_uuid)] | None = Field(
        default=None, description="azure: the identity's client ID (azure.workload.identity/client-id)"
    )
    tenant_id: Annotated[StrictStr, AfterValidator(_uuid)] | None = Field(
        default=None, description="azure: the tenant (default: the webhook's own)"
    )


class PodSecurity(_Model):
    """Pod identity; berth adds the rest of Pod Security 'restricted' itself."""

    run_as_user: StrictInt = Field(default=1000, ge=1)
    run_as_group: StrictInt | None = Field(default=None, ge=0)
    fs_group: StrictInt | None = Field(default=None, ge=0)


class Disruption(_Model):
    """PodDisruptionBudget: how many training pods a voluntary disruption may take."""

    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None


class VolumeRetention(_Model):
    """StatefulSet persistentVolumeClaimRetentionPolicy: what happens to claims on scale-down and delete."""

    when_scaled: RetentionPolicy = "Retain"
    when_deleted: RetentionPolicy = "Retain"


class Monitoring(_Model):
    """Prometheus scrape config, Pod/ServiceMonitor and alert rules."""

    prometheus: StrictBool = True
    service_monitor: StrictBool = False
    pod_monitor: StrictBool = False
    alerts: StrictBool = True
    namespace: DnsLabel = Field(default="monitoring", description="where Prometheus runs")
    checkpoint_max_age: Duration = Field(default="2h", description="alert when the last checkpoint is older")


class Backup(_Model):
    """Velero Schedule with CSI snapshots of the training volumes."""

    schedule: Cron
    ttl: Duration = "720h"
    snapshot_volumes: StrictBool = True
    velero_namespace: DnsLabel = "velero"
    storage_location: StrictStr | None = None
    snapshot_driver: DnsSubdomain | None = Field(
        default=None, description="CSI driver of the VolumeSnapshotClass (default: from the hot class)"
    )


class Toleration(_Model):
    """A pod toleration, as in the Pod API."""

    key: StrictStr | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: StrictStr | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: StrictInt | None = Field(default=None, description="NoExecute only: how long to stay")


class Queue(_Model):
    """The batch queue the pods wait in: a Kueue LocalQueue or a Volcano queue (set exactly one)."""

    kueue: LabelValue | None = Field(
        default=None, description="LocalQueue name: the `kueue.x-k8s.io/queue-name` label on the StatefulSet"
    )
    volcano: StrictStr | None = Field(
        default=None,
        description="Volcano queue: schedulerName volcano, the pod annotation `scheduling.volcano.sh/queue-name` "
        "and a gang of all replicas (`scheduling.volcano.sh/group-min-member`)",
    )


class Scheduling(_Model):
    """Where pods may run and how they spread; spread is on by default."""

    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    gpu_tolerations: StrictBool = Field(
        default=True, description="tolerate the nvidia.com/gpu taint when GPUs are requested"
    )
    spread: Literal["required", "preferred", "none"] = "preferred"
    affinity: KAffinity | None = Field(default=None, description="pod affinity, as in the Pod API")
    priority_class_name: DnsSubdomain | None = Field(default=None, description="a PriorityClass that exists")
    scheduler_name: StrictStr | None = Field(
        default=None, description="default: the cluster's (volcano with a Volcano queue)"
    )
    queue: Queue | None = None


class EnvSource(_Model):
    """An env value read when the pod starts: ``valueFrom`` as in the Pod API (Secret, ConfigMap, field)."""

    value_from: KEnvVarSource = Field(description="secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef")


class Probes(_Model):
    """Health checks of the trainer container, each a Kubernetes Probe; ports must be the container's."""

    startup: KProbe | None = None
    readiness: KProbe | None = None
    liveness: KProbe | None = None


class PodVolume(_Model):
    """A volume from the cluster's API objects or a CSI driver, mounted into the trainer: set one source."""

    mount_path: MountPath
    read_only: StrictBool | None = Field(default=None, description="default: true, except for csi")
    sub_path: StrictStr | None = None
    secret: KSecretVolumeSource | None = None
    config_map: KConfigMapVolumeSource | None = None
    projected: KProjectedVolumeSource | None = None
    csi: KCSIVolumeSource | None = None

    def source(self) -> tuple[str, dict[str, Any]] | None:
        """(Pod API field, value) of the one source set."""
        for field in ("secret", "config_map", "projected", "csi"):
            value = getattr(self, field)
            if value is not None:
                return to_camel(field), value
        return None


class Lifecycle(_Model):
    """A run that finishes, fails together and says where it is: ``berth run`` supervises the trainer.

    Present (even empty, ``lifecycle: {}``) turns it on; absent keeps the preamble-only pod of
    earlier specs. See docs/lifecycle.md.
    """

    on_complete: Literal["scaleToZero", "idle"] = Field(
        default="scaleToZero",
        description="when every rank's trainer exited 0: scale the StatefulSet to 0 (claims kept) or idle",
    )
    max_restarts: StrictInt = Field(
        default=3, ge=0, description="gang restarts after a trainer failure before the run is Failed"
    )
    backoff_seconds: StrictInt = Field(
        default=10, ge=0, le=3600, description="wait before the first gang restart; doubles each time, up to 5m"
    )
    stop_grace_seconds: StrictInt = Field(
        default=30, ge=1, description="SIGTERM to SIGKILL when the gang stops a trainer to restart it"
    )
    gang_port: StrictInt = Field(
        default=2223, ge=1, le=65535, description="port the supervisors' heartbeat uses (rank 0 listens)"
    )
    checkpoint_size: Size | None = Field(
        default=None,
        description="bytes one pod writes per checkpoint save: sizes terminationGracePeriodSeconds when that is unset",
    )
    runner: Literal["image", "inject"] = Field(
        default="image",
        description="where `berth run` comes from: the image's berth, or inject (a zipapp needing only python3 3.11+)",
    )


class ClusterSpec(_Model):
    """What to run and the storage it gets."""

    framework: Framework = Field(default=Framework.NONE, description="whose rendezvous env each pod gets")
    replicas: StrictInt = Field(ge=1, le=10000, description="pods, each with its own claims")
    port: StrictInt = Field(default=2222, ge=1, le=65535, description="rendezvous port (container port `training`)")
    service_name: DnsLabel | None = Field(default=None, description="headless Service (default: metadata.name)")
    cluster_domain: DnsSubdomain = "cluster.local"
    image: Annotated[StrictStr, Field(min_length=1)]
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[StrictStr] = Field(
        default_factory=list, description="training command; wrapped by the rendezvous preamble"
    )
    args: list[StrictStr] = Field(default_factory=list)
    env: dict[StrictStr, StrictStr | EnvSource] = Field(
        default_factory=dict,
        description="env of the trainer: a string, or {valueFrom: …}; per-pod rendezvous env is berth's",
    )
    env_from: list[KEnvFromSource] = Field(
        default_factory=list, description="whole Secrets or ConfigMaps as env (Kubernetes EnvFromSource)"
    )
    shm: Size | None = Field(
        default=None,
        description="size of the trainer's /dev/shm, a tmpfs (the runtime's default, which init containers and "
        "sidecars keep, is 64Mi); counts against the memory limit",
    )
    init_containers: list[KContainer] = Field(
        default_factory=list,
        description="run to completion before the trainer, in order (Kubernetes Container; "
        "image defaults to spec.image)",
    )
    sidecars: list[KContainer] = Field(
        default_factory=list,
        description="run beside the trainer for the pod's life: native sidecars "
        "(initContainers with restartPolicy Always)",
    )
    probes: Probes = Field(default_factory=Probes)
    image_pull_secrets: list[DnsSubdomain] = Field(default_factory=list, description="Secrets to pull images with")
    pod_volumes: dict[DnsLabel, PodVolume] = Field(
        default_factory=dict, description="Secret, ConfigMap, projected or CSI volumes mounted into the trainer"
    )
    pod_template: KPodTemplateSpec | None = Field(
        default=None,
        description="last resort: a strategic-merge overlay on the rendered pod template "
        "(containers, volumes, env merge by name; $patch: delete removes)",
    )
    resources: Resources = Field(default_factory=Resources)
    storage_classes: dict[DnsSubdomain, StorageClassSpec] = Field(
        default_factory=dict, description="classes volumes may use; berth creates those not `existing`"
    )
    volumes: dict[DnsLabel, VolumeSpec] = Field(
        default_factory=dict, description="per-pod claims (volumeClaimTemplates)"
    )
    shared_volumes: dict[DnsLabel, SharedVolumeSpec] = Field(
        default_factory=dict, description="claims every pod mounts (datasets)"
    )
    datasets: dict[DnsLabel, DatasetSpec] = Field(
        default_factory=dict, description="data staged into volumes before the trainers start (berth stage)"
    )
    archive: Archive | None = Field(default=None, description="cold tier for checkpoints (S3)")
    checkpoint_path: MountPath | None = Field(
        default=None, description="checkpoint directory (default: <checkpoint volume>/checkpoints)"
    )
    security_context: PodSecurity = Field(default_factory=PodSecurity)
    disruption: Disruption = Field(default_factory=Disruption)
    volume_retention: VolumeRetention = Field(default_factory=VolumeRetention)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    backup: Backup | None = None
    scheduling: Scheduling = Field(default_factory=Scheduling)
    network_policy: StrictBool = Field(default=True, description="render a NetworkPolicy for the pods")
    metrics_port: StrictInt = Field(default=9400, ge=1, le=65535, description="checkpoint metrics (`metrics`)")
    termination_grace_period_seconds: StrictInt = Field(
        default=600, ge=30, description="time to finish an in-flight checkpoint on shutdown"
    )
    service_account_name: DnsSubdomain | None = None
    identity: Identity | None = Field(
        default=None, description="the pods' cloud identity (IRSA, EKS Pod Identity, GKE or Azure Workload Identity)"
    )
    lifecycle: Lifecycle | None = Field(
        default=None, description="completion, gang restart and phases (absent: preamble only, as before)"
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value


class TrainingCluster(_Model):
    """The whole spec: ``apiVersion: berth.dev/v1alpha1``, ``kind: TrainingCluster``."""

    api_version: Literal["berth.dev/v1alpha1"]
    kind: Literal["TrainingCluster"]
    metadata: Metadata
    spec: ClusterSpec

    @property
    def name(self) -> str:
        """StatefulSet name and prefix of every pod."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """Namespace of all namespaced objects."""
        return self.metadata.namespace

    @property
    def service_name(self) -> str:
        """Headless Service name (defaults to the cluster name)."""
        return self.spec.service_name or self.metadata.name

    @property
    def gpus_per_pod(self) -> int:
        """GPUs each pod gets (the nvidia.com/gpu limit, else request)."""
        res = self.spec.resources
        raw = res.limits.get("nvidia.com/gpu", res.requests.get("nvidia.com/gpu", 0))
        return int(parse_quantity(raw))

    @property
    def rendezvous(self) -> RendezvousParams:
        """What each pod needs to find its peers; rendered into the pod as ``BERTH_*`` env."""
        return RendezvousParams(
            framework=self.spec.framework,
            name=self.name,
            service=self.service_name,
            namespace=self.namespace,
            cluster_domain=self.spec.cluster_domain,
            port=self.spec.port,
            replicas=self.spec.replicas,
            gpus_per_pod=self.gpus_per_pod,
        )

    def checkpoint_volume(self) -> str | None:
        """Name of the per-replica volume that holds checkpoints, if any."""
        vols = self.spec.volumes
        flagged = [n for n, v in vols.items() if v.checkpoints]
        candidates = [n for n, v in vols.items() if v.checkpoints is None]
        hot = [n for n in candidates if self.tier_of(vols[n].storage_class) is Tier.HOT]
        return next(iter(flagged + hot + candidates), None)

    def checkpoint_dir(self) -> str | None:
        """Directory inside the pod where checkpoints go."""
        if self.spec.checkpoint_path:
            return self.spec.checkpoint_path
        vol = self.checkpoint_volume()
        return f"{self.spec.volumes[vol].mount_path}/checkpoints" if vol else None

    def tier_of(self, storage_class: str | None) -> Tier | None:
        """Tier of a class declared in the spec; None for classes berth does not know."""
        sc = self.spec.storage_classes.get(storage_class or "")
        return sc.tier if sc else None
