"""Cross-field checks of the pod features: Kubernetes sub-objects, containers, probes, shm, the overlay.

Kubernetes objects in the spec (probes, affinity, env sources, volume sources, containers, the
``podTemplate`` overlay) are checked against the official schema (``spec/kubeschema.py``); what a
schema cannot say — a probe on a port the trainer does not open, a sidecar named like the trainer,
``/dev/shm`` larger than the memory limit, an overlay that removes the trainer — is checked here.
Every problem carries the spec path of the field to blame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from berth.contract import ENV_PREFIX, MANAGED_ENV, SHM_PATH, SHM_VOLUME, TRAINER_CONTAINER, VOLCANO_SCHEDULER
from berth.quantity import QuantityError, parse_quantity
from berth.spec import kubeschema, overlay
from berth.spec.errors import SpecIssue
from berth.spec.model import EnvSource, TrainingCluster

_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def check_pod_features(spec: TrainingCluster) -> Iterator[SpecIssue]:
    """Every pod-feature problem of a spec that is valid field by field."""
    yield from _schemas(spec)
    yield from _containers(spec)
    yield from _probes(spec)
    yield from _volumes(spec)
    yield from _scheduling(spec)
    yield from _pod_template(spec)


def _schemas(spec: TrainingCluster) -> Iterator[SpecIssue]:
    s = spec.spec
    for name, value in s.env.items():
        if isinstance(value, EnvSource):
            yield from kubeschema.issues(value.value_from, "EnvVarSource", ("spec", "env", name, "valueFrom"))
    for index, source in enumerate(s.env_from):
        yield from kubeschema.issues(source, "EnvFromSource", ("spec", "envFrom", index))
    for group, containers in (("initContainers", s.init_containers), ("sidecars", s.sidecars)):
        for index, container in enumerate(containers):
            yield from kubeschema.issues(container, "Container", ("spec", group, index))
    for kind in ("startup", "readiness", "liveness"):
        probe = getattr(s.probes, kind)
        if probe is not None:
            yield from kubeschema.issues(probe, "Probe", ("spec", "probes", kind))
    if s.scheduling.affinity is not None:
        yield from kubeschema.issues(s.scheduling.affinity, "Affinity", ("spec", "scheduling", "affinity"))
    for name, vol in s.pod_volumes.items():
        for field, kind in (
            ("secret", "SecretVolumeSource"),
            ("configMap", "ConfigMapVolumeSource"),
            ("projected", "ProjectedVolumeSource"),
            ("csi", "CSIVolumeSource"),
        ):
            value = getattr(vol, {"configMap": "config_map"}.get(field, field))
            if value is not None:
                yield from kubeschema.issues(value, kind, ("spec", "podVolumes", name, field))


def pod_volume_names(spec: TrainingCluster) -> list[str]:
    """Names of every volume of the rendered pod (claim templates included), in render order."""
    s = spec.spec
    names = [*s.volumes, *s.shared_volumes, *s.pod_volumes]
    return [*names, SHM_VOLUME] if s.shm else names


def _containers(spec: TrainingCluster) -> Iterator[SpecIssue]:
    s = spec.spec
    seen: dict[str, str] = {}
    volumes = _mountable(spec)
    for group, containers in (("initContainers", s.init_containers), ("sidecars", s.sidecars)):
        for index, container in enumerate(containers):
            base = ("spec", group, index)
            name = container.get("name")
            if name == TRAINER_CONTAINER:
                yield SpecIssue(
                    (*base, "name"),
                    f"{TRAINER_CONTAINER!r} is the training container's name",
                    "give the container its own name",
                )
            elif isinstance(name, str) and name in seen:
                yield SpecIssue(
                    (*base, "name"),
                    f"container name {name!r} is already used by {seen[name]}",
                    "container names are unique within a pod",
                )
            elif isinstance(name, str):
                seen[name] = f"{group}[{index}]"
            policy = container.get("restartPolicy")
            if group == "sidecars" and policy not in (None, "Always"):
                yield SpecIssue(
                    (*base, "restartPolicy"),
                    "a sidecar restarts with restartPolicy Always",
                    "remove restartPolicy (berth sets Always), or move it to initContainers",
                )
            if group == "initContainers" and policy is not None:
                yield SpecIssue(
                    (*base, "restartPolicy"),
                    "an init container takes no restartPolicy",
                    "for a container that runs beside the trainer, use spec.sidecars",
                )
            yield from _quantities(container, base)
            mounts = container.get("volumeMounts")
            for m_index, mount in enumerate(mounts if isinstance(mounts, list) else []):
                vol = mount.get("name") if isinstance(mount, dict) else None
                if isinstance(vol, str) and vol not in volumes:
                    known = ", ".join(sorted(volumes)) or "none"
                    yield SpecIssue(
                        (*base, "volumeMounts", m_index, "name"),
                        f"the pod has no volume {vol!r}",
                        f"mount one of: {known}",
                    )


def _mountable(spec: TrainingCluster) -> set[str]:
    """Volume names an init container or sidecar may mount: berth's, as the overlay leaves them.

    An ``emptyDir`` the overlay adds is how an init container hands files to the trainer, so it
    counts; a volume the overlay deletes does not. An overlay with problems is judged on its own.
    """
    names = set(pod_volume_names(spec))
    patch = spec.spec.pod_template
    if patch is None or next(overlay.problems(patch), None) is not None:
        return names
    pod = overlay.merge(skeleton(spec), patch).get("spec")
    volumes = pod.get("volumes") if isinstance(pod, dict) else None
    rendered = {v.get("name") for v in volumes if isinstance(v, dict)} if isinstance(volumes, list) else set()
    return set(spec.spec.volumes) | {n for n in rendered if isinstance(n, str)}


def _quantities(container: dict[str, Any], base: tuple[str | int, ...]) -> Iterator[SpecIssue]:
    """Requests and limits the schema types only as strings: ``8gb`` would pass it and fail at apply."""
    resources = container.get("resources")
    for kind in ("requests", "limits"):
        values = resources.get(kind) if isinstance(resources, dict) else None
        for key, value in (values if isinstance(values, dict) else {}).items():
            try:
                parse_quantity(value)
            except (QuantityError, TypeError, ValueError) as err:
                yield SpecIssue((*base, "resources", kind, key), str(err), "e.g. 500m, 2, 8Gi")


def trainer_ports(spec: TrainingCluster) -> dict[str, int]:
    """The trainer's named container ports."""
    s = spec.spec
    ports = {"training": s.port}
    if s.monitoring.prometheus:
        ports["metrics"] = s.metrics_port
    return ports


def _probe_ports(spec: TrainingCluster) -> dict[str, int]:
    """The trainer's ports a probe may name: berth's, and those the overlay adds (unnamed under their number)."""
    ports: dict[str, int] = dict(trainer_ports(spec))
    raw = (spec.spec.pod_template or {}).get("spec")
    containers = raw.get("containers") if isinstance(raw, dict) else None
    for container in containers if isinstance(containers, list) else []:
        if isinstance(container, dict) and container.get("name") == TRAINER_CONTAINER:
            for port in container.get("ports") or []:
                number = port.get("containerPort") if isinstance(port, dict) else None
                if isinstance(number, int) and not isinstance(number, bool):
                    ports[str(port.get("name") or number)] = number
    return ports


def _probes(spec: TrainingCluster) -> Iterator[SpecIssue]:
    ports = _probe_ports(spec)
    declared = ", ".join(f"{n} ({p})" for n, p in ports.items())
    for kind in ("startup", "readiness", "liveness"):
        probe = getattr(spec.spec.probes, kind)
        if probe is None:
            continue
        base = ("spec", "probes", kind)
        handlers = [h for h in _HANDLERS if h in probe]
        if len(handlers) != 1:
            yield SpecIssue(
                base,
                f"a probe needs exactly one of {', '.join(_HANDLERS)}, got {', '.join(handlers) or 'none'}",
                "e.g. tcpSocket: {port: training}",
            )
        for handler in handlers:
            action = probe[handler]
            port = action.get("port") if isinstance(action, dict) else None
            if port is None or isinstance(port, bool):
                continue
            if (isinstance(port, int) and port not in ports.values()) or (isinstance(port, str) and port not in ports):
                yield SpecIssue(
                    (*base, handler, "port"), f"the trainer has no port {port!r}", f"probe one of its ports: {declared}"
                )
        threshold = probe.get("successThreshold")
        if kind != "readiness" and threshold not in (None, 1):
            yield SpecIssue(
                (*base, "successThreshold"),
                f"a {kind} probe's successThreshold must be 1",
                "remove it (it defaults to 1)",
            )


def _volumes(spec: TrainingCluster) -> Iterator[SpecIssue]:
    s = spec.spec
    taken = {**{n: "volumes" for n in s.volumes}, **{n: "sharedVolumes" for n in s.shared_volumes}}
    paths = {v.mount_path: f"volumes.{n}" for n, v in s.volumes.items()}
    paths.update({v.mount_path: f"sharedVolumes.{n}" for n, v in s.shared_volumes.items()})
    for name, vol in s.pod_volumes.items():
        base = ("spec", "podVolumes", name)
        if name in taken:
            yield SpecIssue(
                base,
                f"the name {name!r} is also used in spec.{taken[name]}; pod volume names must be unique",
                "rename one of them",
            )
        if vol.mount_path in paths:
            yield SpecIssue(
                (*base, "mountPath"),
                f"mount path {vol.mount_path} is already used by {paths[vol.mount_path]}",
                "give each volume its own mount path",
            )
        paths.setdefault(vol.mount_path, f"podVolumes.{name}")
        sources = [f for f in ("secret", "config_map", "projected", "csi") if getattr(vol, f) is not None]
        if len(sources) != 1:
            yield SpecIssue(
                base,
                f"set exactly one of secret, configMap, projected, csi (got {len(sources)})",
                "one volume, one source",
            )
    if not s.shm:
        return
    mounts = [("volumes", n, v.mount_path) for n, v in s.volumes.items()]
    mounts += [("sharedVolumes", n, v.mount_path) for n, v in s.shared_volumes.items()]
    mounts += [("podVolumes", n, v.mount_path) for n, v in s.pod_volumes.items()]
    for group, name, path in mounts:
        if name == SHM_VOLUME:
            yield SpecIssue(
                ("spec", group, SHM_VOLUME),
                f"the volume name {SHM_VOLUME!r} is berth's /dev/shm when spec.shm is set",
                "rename the volume",
            )
        if path == SHM_PATH or path.startswith(SHM_PATH + "/"):
            yield SpecIssue(
                ("spec", group, name, "mountPath"),
                f"{SHM_PATH} is where spec.shm is mounted",
                "use another mount path, or remove spec.shm",
            )
    limit = spec.spec.resources.limits.get("memory")
    if limit is not None and parse_quantity(s.shm) > parse_quantity(limit):
        yield SpecIssue(
            ("spec", "shm"),
            f"shm {s.shm} is larger than the memory limit {limit}: pages in a "
            "memory-backed /dev/shm count against the limit, so the pod is OOM-killed before /dev/shm "
            "is full",
            f"use at most {limit}, typically well under it, or raise resources.limits.memory",
        )


def _scheduling(spec: TrainingCluster) -> Iterator[SpecIssue]:
    sch = spec.spec.scheduling
    base = ("spec", "scheduling")
    for index, tol in enumerate(sch.tolerations):
        if tol.toleration_seconds is not None and tol.effect != "NoExecute":
            yield SpecIssue(
                (*base, "tolerations", index, "tolerationSeconds"),
                "tolerationSeconds applies only to effect NoExecute",
                "set effect: NoExecute or remove it",
            )
    queue = sch.queue
    if queue is None:
        return
    if (queue.kueue is None) == (queue.volcano is None):
        yield SpecIssue((*base, "queue"), "set exactly one of kueue, volcano", "e.g. queue: {kueue: team-a}")
    if queue.volcano is not None and sch.scheduler_name not in (None, VOLCANO_SCHEDULER):
        yield SpecIssue(
            (*base, "schedulerName"),
            f"a Volcano queue needs schedulerName {VOLCANO_SCHEDULER}, got {sch.scheduler_name!r}",
            "remove schedulerName (berth sets volcano)",
        )


def skeleton(spec: TrainingCluster) -> dict[str, Any]:
    """The names of what berth renders in the pod template: what an overlay's entries merge into.

    ``tests/render/test_pod_features.py`` checks that it names exactly what ``render`` renders.
    """
    s = spec.spec
    mounts = [{"name": n, "mountPath": v.mount_path} for n, v in s.volumes.items()]
    mounts += [{"name": n, "mountPath": v.mount_path} for n, v in s.shared_volumes.items()]
    mounts += [{"name": n, "mountPath": v.mount_path} for n, v in s.pod_volumes.items()]
    if s.shm:
        mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    trainer: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": s.image,
        "ports": [{"name": n, "containerPort": p} for n, p in trainer_ports(spec).items()],
    }
    if mounts:
        trainer["volumeMounts"] = mounts
    pod: dict[str, Any] = {"containers": [trainer]}
    init = [{"name": c.get("name"), "image": s.image} for c in [*s.init_containers, *s.sidecars]]
    if init:
        pod["initContainers"] = init
    volumes = [n for n in pod_volume_names(spec) if n not in s.volumes]
    if volumes:
        pod["volumes"] = [{"name": n, "emptyDir": {}} for n in volumes]
    return {"metadata": {}, "spec": pod}


def _pod_template(spec: TrainingCluster) -> Iterator[SpecIssue]:
    patch = spec.spec.pod_template
    if patch is None:
        return
    base = ("spec", "podTemplate")
    problems = list(overlay.problems(patch))
    for problem in problems:
        yield SpecIssue((*base, *problem.path), problem.message, problem.hint)
    if problems:
        return
    yield from _overlay_env(patch)
    raw = patch.get("spec")
    pod: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for group in ("containers", "initContainers"):
        items = pod.get(group)
        for index, container in enumerate(items if isinstance(items, list) else []):
            if isinstance(container, dict):
                yield from _quantities(container, (*base, "spec", group, index))
    merged = overlay.merge(skeleton(spec), patch)
    containers = (merged.get("spec") or {}).get("containers")
    names = [c.get("name") for c in containers] if isinstance(containers, list) else []
    if TRAINER_CONTAINER not in names:
        yield SpecIssue(
            (*base, *_removes_trainer(patch)),
            f"the overlay removes the {TRAINER_CONTAINER} container",
            "patch the trainer by name instead (containers: [{name: trainer, …}]); "
            "$patch: delete and $patch: replace drop berth's container",
        )
        return
    init = [c.get("name") for c in (merged.get("spec") or {}).get("initContainers") or [] if isinstance(c, dict)]
    if TRAINER_CONTAINER in init:
        at = overlay.overlay_path(patch, merged, ("spec", "initContainers", init.index(TRAINER_CONTAINER), "name"))
        yield SpecIssue(
            (*base, *at),
            f"{TRAINER_CONTAINER!r} is the training container's name",
            "give the init container its own name",
        )
    policy = (merged.get("spec") or {}).get("restartPolicy")
    if policy not in (None, "Always"):
        yield SpecIssue(
            (*base, "spec", "restartPolicy"),
            f"a StatefulSet's pods restart Always, not {policy}",
            "remove restartPolicy; a container that should run once belongs in spec.initContainers",
        )
    for path, message in kubeschema.errors(merged, "PodTemplateSpec"):
        yield SpecIssue(
            (*base, *overlay.overlay_path(patch, merged, path)),
            message,
            "the overlay, merged into berth's pod template, must be a valid PodTemplateSpec",
        )


def _overlay_env(patch: dict[str, Any]) -> Iterator[SpecIssue]:
    containers = (patch.get("spec") or {}).get("containers") if isinstance(patch.get("spec"), dict) else None
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, dict) or container.get("name") != TRAINER_CONTAINER:
            continue
        env = container.get("env")
        for e_index, entry in enumerate(env if isinstance(env, list) else []):
            name = entry.get("name") if isinstance(entry, dict) else None
            if (
                isinstance(name, str)
                and (name in MANAGED_ENV or name.startswith(ENV_PREFIX))
                and (entry.get(overlay.DIRECTIVE) != "delete")
            ):
                yield SpecIssue(
                    ("spec", "podTemplate", "spec", "containers", index, "env", e_index, "name"),
                    f"{name} is computed by berth for each pod; the overlay cannot set it",
                    "remove the entry (or `$patch: delete` it to drop berth's)",
                )


def _removes_trainer(patch: dict[str, Any]) -> tuple[str | int, ...]:
    """Where in the overlay the trainer container is dropped."""
    spec = patch.get("spec")
    if not isinstance(spec, dict):
        return ("spec",) if "spec" in patch else ()
    if overlay.DIRECTIVE in spec:
        return ("spec", overlay.DIRECTIVE)
    containers = spec.get("containers")
    if not isinstance(containers, list):
        return ("spec", "containers") if "containers" in spec else ("spec",)
    for index, item in enumerate(containers):
        if isinstance(item, dict) and item.get("name") == TRAINER_CONTAINER and item.get(overlay.DIRECTIVE):
            return ("spec", "containers", index)
        if isinstance(item, dict) and item.get(overlay.DIRECTIVE) == "replace":
            return ("spec", "containers", index)
    return ("spec", "containers")
