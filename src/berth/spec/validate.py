"""Checks that look across fields of a spec, after each field is valid on its own.

Each check returns problems with the field path to blame, so the loader can point at
the line. They encode the mistakes of hand-written training stacks: a volume on a class
nobody defined, a PDB that blocks every drain, a TF_CONFIG baked into the template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from berth.contract import ENV_PREFIX, MANAGED_ENV
from berth.providers import limits
from berth.providers.presets import PRESET_FIELDS, PRESETS, REQUIRED, ULTRA_SKUS, Provider, class_parameters
from berth.quantity import parse_quantity
from berth.rendezvous import MAX_ENV_ENTRY, Framework
from berth.spec.datasets import check_datasets
from berth.spec.errors import SpecIssue
from berth.spec.identity import check_identity
from berth.spec.model import StorageClassSpec, TrainingCluster, VolumeSpec
from berth.spec.pod_checks import check_pod_features

Check = Callable[[TrainingCluster], Iterator[SpecIssue]]


def check(spec: TrainingCluster) -> list[SpecIssue]:
    """Run every cross-field check; an empty list means the spec can be rendered."""
    return [issue for fn in CHECKS for issue in fn(spec)]


def _storage_class_refs(spec: TrainingCluster) -> Iterator[SpecIssue]:
    declared = spec.spec.storage_classes
    refs = [("volumes", n, v.storage_class) for n, v in spec.spec.volumes.items()]
    # A shared claim berth provisions names a class too; an existing claim already has one, and a
    # claim bound to a static NFS volume must name none (its own check says so).
    refs += [
        ("sharedVolumes", n, v.storage_class)
        for n, v in spec.spec.shared_volumes.items()
        if v.storage_class is not None and not v.existing and v.nfs is None
    ]
    for group, name, cls in refs:
        if cls not in declared:
            known = ", ".join(sorted(declared)) or "none declared"
            yield SpecIssue(
                ("spec", group, name, "storageClass"),
                f"unknown storage class {cls!r} (declared: {known})",
                f"add it under spec.storageClasses (use `{cls}: {{existing: true}}` "
                "for a class the cluster already has)",
            )


def check_parts(data: Mapping[str, Any]) -> list[SpecIssue]:
    """The storage checks on every class and volume that is valid on its own.

    Runs when the whole spec failed field validation, so a first run reports an IOPS or
    size limit together with the field errors instead of only after they are fixed.
    """
    body = data.get("spec")
    if not isinstance(body, Mapping):
        return []
    classes: dict[str, StorageClassSpec] = {}
    for name, raw in _entries(body.get("storageClasses")):
        try:
            classes[name] = StorageClassSpec.model_validate(raw)
        except ValidationError:
            continue
    out = [issue for name, sc in classes.items() for issue in _class_issues(name, sc)]
    for name, raw in _entries(body.get("volumes")):
        try:
            vol = VolumeSpec.model_validate(raw)
        except ValidationError:
            continue
        out += _size_issues(name, vol, classes.get(vol.storage_class))
    return out


def _entries(raw: object) -> Iterator[tuple[str, object]]:
    if isinstance(raw, Mapping):
        yield from ((str(k), v) for k, v in raw.items())


def _storage_class_presets(spec: TrainingCluster) -> Iterator[SpecIssue]:
    for name, sc in spec.spec.storage_classes.items():
        yield from _class_issues(name, sc)


def _class_issues(name: str, sc: StorageClassSpec) -> Iterator[SpecIssue]:
    base = ("spec", "storageClasses", name)
    if sc.existing:
        preset = [
            f
            for f in ("provider", "type", "iops", "throughput", "iops_per_gb", "provisioner")
            if getattr(sc, f) is not None
        ] + (["parameters"] if sc.parameters else [])
        if preset:
            yield SpecIssue(
                (*base, _alias(preset[0])),
                "an existing class is used as it is; berth does not change its settings",
                "remove `existing: true` to let berth create the class, or remove the settings",
            )
        return
    if sc.provider is None:
        yield SpecIssue(
            (*base, "provider"),
            "a class berth creates needs a provider",
            "one of aws-ebs, gcp-pd, azure-disk, nfs, ceph-rbd, cephfs, local, csi; "
            "or `existing: true` for a class the cluster already has",
        )
        return
    for param, message, hint in _preset_issues(sc):
        yield SpecIssue((*base, param), message, hint)


def _alias(field: str) -> str:
    return StorageClassSpec.model_fields[field].alias or field


def _preset_issues(sc: StorageClassSpec) -> Iterator[tuple[str, str, str]]:
    """(field, message, hint) for settings the provider does not take, lacks, or limits."""
    assert sc.provider is not None
    provider = sc.provider.value
    preset = PRESETS[sc.provider]
    for field in PRESET_FIELDS:
        if getattr(sc, field) is not None and field not in preset.fields:
            takes = ", ".join(sorted(_alias(f) for f in preset.fields)) or "nothing"
            yield (
                _alias(field),
                f"provider {provider} does not take {_alias(field)}",
                f"{provider} takes: {takes}; pass other driver settings in parameters",
            )
    for field in REQUIRED.get(sc.provider, ()):
        if getattr(sc, field) is None:
            yield (_alias(field), f"provider {provider} needs {_alias(field)}", f"add {_alias(field)}: …")
    if sc.type is not None and preset.types and sc.type not in preset.types:
        yield ("type", f"{sc.type!r} is not a {provider} disk type", f"one of {', '.join(preset.types)}")
        return
    if sc.provider is Provider.AZURE_DISK and (sc.iops or sc.throughput) and sc.type not in ULTRA_SKUS:
        yield (
            "iops" if sc.iops else "throughput",
            f"Azure sets IOPS and throughput only on {' and '.join(ULTRA_SKUS)} disks",
            "use type: PremiumV2_LRS, or remove iops/throughput",
        )
    provisioner, params = class_parameters(sc)
    for message in limits.check_storage_class_params(provisioner, params):
        field = next((f for f in ("iopsPerGB", "throughput", "iops") if f in message), "type")
        yield (field, message, f"see {provider}'s documented limits (berth/providers/limits.py cites them)")


def _volume_sizes(spec: TrainingCluster) -> Iterator[SpecIssue]:
    for name, vol in spec.spec.volumes.items():
        yield from _size_issues(name, vol, spec.spec.storage_classes.get(vol.storage_class))


def _size_issues(name: str, vol: VolumeSpec, sc: StorageClassSpec | None) -> Iterator[SpecIssue]:
    if sc is None or sc.existing or sc.provider is None:
        return
    provisioner, params = class_parameters(sc)
    for message in limits.check_volume_size(provisioner, params, float(parse_quantity(vol.size))):
        yield SpecIssue(
            ("spec", "volumes", name, "size"), message, f"pick a size the {vol.storage_class} class can provision"
        )


def _mount_paths(spec: TrainingCluster) -> Iterator[SpecIssue]:
    seen: dict[str, str] = {}
    mounts = [("volumes", n, v.mount_path) for n, v in spec.spec.volumes.items()]
    mounts += [("sharedVolumes", n, v.mount_path) for n, v in spec.spec.shared_volumes.items()]
    for group, name, path in mounts:
        if path in seen:
            yield SpecIssue(
                ("spec", group, name, "mountPath"),
                f"mount path {path} is already used by {seen[path]}",
                "give each volume its own mount path",
            )
        else:
            seen[path] = f"{group}.{name}"
    for name in spec.spec.shared_volumes:
        if name in spec.spec.volumes:
            yield SpecIssue(
                ("spec", "sharedVolumes", name),
                f"the name {name!r} is also used in spec.volumes; pod volume names must be unique",
                "rename one of them",
            )


def _shared_volumes(spec: TrainingCluster) -> Iterator[SpecIssue]:
    replicas = spec.spec.replicas
    claims: dict[str, str] = {}
    for name, sv in spec.spec.shared_volumes.items():
        base = ("spec", "sharedVolumes", name)
        if sv.claim_name in claims:
            # Two entries would render two PVCs of one name: the second apply silently replaces the first.
            yield SpecIssue(
                (*base, "claimName"),
                f"claim {sv.claim_name} is already used by sharedVolumes.{claims[sv.claim_name]}",
                "mount one claim from one shared volume",
            )
        claims.setdefault(sv.claim_name, name)
        if sv.nfs is not None and sv.storage_class is not None:
            yield SpecIssue(
                (*base, "storageClass"),
                "a claim bound to a static NFS volume uses no storage class",
                "remove storageClass, or remove nfs to provision the claim from the class",
            )
        if sv.access_mode == "ReadOnlyMany" and sv.read_only is False:
            yield SpecIssue(
                (*base, "readOnly"),
                "a ReadOnlyMany claim cannot be mounted writable",
                "drop readOnly (it defaults to true) or use accessMode: ReadWriteMany",
            )
        if sv.access_mode in ("ReadWriteOnce", "ReadWriteOncePod") and replicas > 1:
            yield SpecIssue(
                (*base, "accessMode"),
                f"{sv.access_mode} cannot be mounted by {replicas} pods on different nodes (Multi-Attach error)",
                "use ReadOnlyMany for a dataset, ReadWriteMany for shared output, or spec.volumes for per-pod storage",
            )
        if not sv.existing and sv.size is None:
            yield SpecIssue((*base, "size"), "a claim berth creates needs a size", "e.g. size: 1Ti")
        if sv.existing and (sv.nfs is not None or sv.size is not None):
            yield SpecIssue(
                (*base, "existing"),
                "an existing claim is only mounted; size and nfs would be ignored",
                "remove existing: true to let berth create the claim",
            )


def _resources(spec: TrainingCluster) -> Iterator[SpecIssue]:
    res = spec.spec.resources
    for key in sorted(set(res.requests) & set(res.limits)):
        req, lim = parse_quantity(res.requests[key]), parse_quantity(res.limits[key])
        if "/" in key and key not in ("cpu", "memory") and req != lim:
            yield SpecIssue(
                ("spec", "resources", "requests", key),
                f"{key} request ({res.requests[key]}) must equal its limit ({res.limits[key]}): "
                "extended resources cannot be overcommitted",
                f"set both to {res.limits[key]}",
            )
        elif req > lim:
            yield SpecIssue(
                ("spec", "resources", "requests", key),
                f"{key} request {res.requests[key]} is larger than its limit {res.limits[key]}",
                "lower the request or raise the limit",
            )


def _service_name(spec: TrainingCluster) -> Iterator[SpecIssue]:
    # Service names are DNS-1035 labels (a letter first); the API server rejects '3d-unet'.
    if not spec.service_name[0].isalpha():
        path = ("spec", "serviceName") if spec.spec.service_name else ("metadata", "name")
        yield SpecIssue(
            path,
            f"the Service name {spec.service_name!r} must start with a letter",
            "Service names are DNS-1035 labels; set spec.serviceName to a name starting with a letter",
        )


def _disruption(spec: TrainingCluster) -> Iterator[SpecIssue]:
    d = spec.spec.disruption
    base = ("spec", "disruption")
    if d.min_available is not None and d.max_unavailable is not None:
        yield SpecIssue(base, "set minAvailable or maxUnavailable, not both", "keep one of them")
    replicas = spec.spec.replicas
    if isinstance(d.min_available, int) and d.min_available >= replicas:
        yield SpecIssue(
            (*base, "minAvailable"),
            f"minAvailable {d.min_available} with {replicas} replicas blocks every node drain",
            f"use at most {replicas - 1}, or maxUnavailable: 1" if replicas > 1 else "use maxUnavailable: 1",
        )
    if d.min_available == "100%" or d.max_unavailable in (0, "0%"):
        field = "minAvailable" if d.min_available == "100%" else "maxUnavailable"
        yield SpecIssue(
            (*base, field),
            "this budget allows no voluntary disruption: node drains hang",
            "allow at least one pod, e.g. maxUnavailable: 1",
        )


def _monitoring(spec: TrainingCluster) -> Iterator[SpecIssue]:
    mon = spec.spec.monitoring
    if not mon.prometheus:
        for field, on in (
            ("serviceMonitor", mon.service_monitor),
            ("podMonitor", mon.pod_monitor),
            ("alerts", mon.alerts and "alerts" in mon.model_fields_set),
        ):
            if on:
                yield SpecIssue(
                    ("spec", "monitoring", field),
                    f"{field} needs the metrics port of prometheus: true",
                    "set prometheus: true, or remove " + field,
                )


def _env(spec: TrainingCluster) -> Iterator[SpecIssue]:
    for name in spec.spec.env:
        if name in MANAGED_ENV or name.startswith(ENV_PREFIX):
            yield SpecIssue(
                ("spec", "env", name),
                f"{name} is computed by berth for each pod; a constant value would give every pod the same identity",
                "remove it; `berth render` shows what each pod gets",
            )


def _checkpoints_and_ports(spec: TrainingCluster) -> Iterator[SpecIssue]:
    if spec.spec.framework is not Framework.NONE and not spec.spec.command:
        yield SpecIssue(
            ("spec", "command"),
            f"{spec.spec.framework.value} needs the training command",
            'berth wraps it to compute the rendezvous env per pod, e.g. command: ["python", "/workspace/train.py"]',
        )
    path = spec.spec.checkpoint_path
    mounts = [v.mount_path for v in spec.spec.volumes.values()]
    mounts += [v.mount_path for v in spec.spec.shared_volumes.values()]
    if path and not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
        # Not on a volume: checkpoints land in the container's writable layer and vanish with it.
        yield SpecIssue(
            ("spec", "checkpointPath"),
            f"{path} is not on any volume: checkpoints would be lost when the container restarts",
            "put it under the mountPath of a spec.volumes entry",
        )
    flagged = [n for n, v in spec.spec.volumes.items() if v.checkpoints]
    for name in flagged[1:]:
        yield SpecIssue(
            ("spec", "volumes", name, "checkpoints"),
            "only one volume can hold checkpoints",
            f"{flagged[0]} already does",
        )
    if spec.spec.metrics_port == spec.spec.port:
        yield SpecIssue(
            ("spec", "metricsPort"),
            f"port {spec.spec.port} is also the training port",
            "pick another metrics port (default 9400)",
        )
    if spec.spec.backup and spec.spec.backup.snapshot_volumes and not spec.spec.volumes:
        yield SpecIssue(
            ("spec", "backup", "snapshotVolumes"),
            "there are no volumes to snapshot",
            "add spec.volumes or set snapshotVolumes: false",
        )
    archive = spec.spec.archive
    if archive and archive.endpoint and not archive.endpoint.startswith(("http://", "https://")):
        yield SpecIssue(
            ("spec", "archive", "endpoint"),
            f"{archive.endpoint!r} is not an http(s) URL",
            "e.g. https://minio.storage.svc:9000",
        )
    for index, tol in enumerate(spec.spec.scheduling.tolerations):
        if tol.operator == "Exists" and tol.value is not None:
            yield SpecIssue(
                ("spec", "scheduling", "tolerations", index, "value"),
                "a toleration with operator Exists takes no value",
                "remove value",
            )


def _providers_need_local(spec: TrainingCluster) -> Iterator[SpecIssue]:
    for name, sc in spec.spec.storage_classes.items():
        if sc.provider is Provider.LOCAL and sc.volume_binding_mode == "Immediate":
            yield SpecIssue(
                ("spec", "storageClasses", name, "volumeBindingMode"),
                "local volumes must bind after scheduling, or pods land on nodes without their disk",
                "use WaitForFirstConsumer",
            )


def _rendezvous_env_size(spec: TrainingCluster) -> Iterator[SpecIssue]:
    """Host lists (TF_CONFIG, HOROVOD_HOSTS) grow with the replicas; the kernel caps one env entry."""
    params = spec.rendezvous
    for name, size in sorted(params.oversized_env().items()):
        yield SpecIssue(
            ("spec", "replicas"),
            f"{name} for {params.replicas} replicas is {size} bytes, over Linux's limit of {MAX_ENV_ENTRY} bytes "
            "(128 KiB, MAX_ARG_STRLEN) for one environment variable: the training command could not start",
            f"at most {params.max_replicas()} replicas with these names; shorter metadata.name, serviceName, "
            "namespace or clusterDomain fit a few more",
        )


CHECKS: tuple[Check, ...] = (
    _storage_class_refs,
    _storage_class_presets,
    _volume_sizes,
    _mount_paths,
    _shared_volumes,
    _resources,
    _service_name,
    _disruption,
    _monitoring,
    _env,
    _checkpoints_and_ports,
    _providers_need_local,
    check_pod_features,
    _rendezvous_env_size,
    check_datasets,
    check_identity,
)
