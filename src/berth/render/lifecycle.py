"""``spec.lifecycle``: what the pod's supervisor (``berth run``) needs, and the Role it may use.

The supervisor patches three things and nothing else (docs/rbac.md): its own pod's
``berth.dev/rank`` annotation, the StatefulSet's ``berth.dev/run`` annotation, and the
StatefulSet's ``scale`` subresource (scale to zero when the run is over). The Role grants
exactly those verbs, each limited by ``resourceNames`` to this cluster's StatefulSet and pods.
"""

from __future__ import annotations

import math
from typing import Any

from berth.contract import ENV_LIFECYCLE
from berth.quantity import parse_quantity
from berth.render.labels import meta
from berth.rendezvous import preamble
from berth.spec.model import TrainingCluster

STATE_VOLUME = "berth-state"
STATE_MOUNT = "/berth-state"
# Write throughput assumed when the checkpoint volume's class declares none (below gp3's 125 MiB/s baseline).
DEFAULT_THROUGHPUT_MIB_S = 100


def termination_grace(spec: TrainingCluster) -> int:
    """The pods' terminationGracePeriodSeconds: the spec's, or sized from ``lifecycle.checkpointSize``.

    Only when the spec leaves ``terminationGracePeriodSeconds`` unset: ``ceil(2 × size /
    throughput) + 60`` — a save may be in flight when SIGTERM comes and the final one follows it,
    then the step in flight and the supervisor's own 5 s; ``throughput`` is the checkpoint
    volume's class's declared MiB/s, else :data:`DEFAULT_THROUGHPUT_MIB_S` (docs/lifecycle.md).
    """
    s = spec.spec
    size = s.lifecycle.checkpoint_size if s.lifecycle else None
    if size is None or "termination_grace_period_seconds" in s.model_fields_set:
        return s.termination_grace_period_seconds
    volume = spec.checkpoint_volume()
    declared = s.storage_classes.get(s.volumes[volume].storage_class or "") if volume else None
    throughput = (declared.throughput if declared else None) or DEFAULT_THROUGHPUT_MIB_S
    mib = float(parse_quantity(size)) / 2**20
    return math.ceil(2 * mib / throughput) + 60


def role_name(spec: TrainingCluster) -> str:
    """The Role and RoleBinding of the supervisor."""
    return f"{spec.name}-supervisor"


def state_dir(spec: TrainingCluster) -> tuple[str, bool]:
    """Where ``.berth/run.json`` lives: the checkpoint volume, else the first volume, else an emptyDir.

    The bool says whether the emptyDir is needed (it keeps completion across container restarts,
    not across a pod's deletion).
    """
    vols = spec.spec.volumes
    name = spec.checkpoint_volume() or next(iter(vols), None)
    if name is not None:
        return vols[name].mount_path, False
    return STATE_MOUNT, True


# An image without berth still trains, as before the lifecycle: said once in the log (and by lint).
_SUPERVISE = """if command -v berth >/dev/null 2>&1; then exec berth run -- "$@"; fi
echo "berth: no berth in this image: running without the supervisor (no completion, no gang restart)" >&2
exec "$@"
"""
# runner: inject — berth's zipapp from the ConfigMap; an image without python3 trains as above.
_SUPERVISE_INJECTED = """if command -v python3 >/dev/null 2>&1; then exec python3 "$BERTH_RUNNER" run -- "$@"; fi
echo "berth: no python3 in this image: running without the supervisor (no completion, no gang restart)" >&2
exec "$@"
"""
RUNNER_VOLUME = "berth-runner"
RUNNER_MOUNT = "/berth-runner"
RUNNER_FILE = "berth.pyz"


def command(spec: TrainingCluster) -> list[str]:
    """The container command: the rendezvous preamble, then ``berth run`` supervising the user's command."""
    lc = spec.spec.lifecycle
    run = _SUPERVISE_INJECTED if lc is not None and lc.runner == "inject" else _SUPERVISE
    return ["/bin/sh", "-c", preamble(spec.spec.framework) + run, "--", *spec.spec.command]


def _injected(spec: TrainingCluster) -> bool:
    return spec.spec.lifecycle is not None and spec.spec.lifecycle.runner == "inject"


def runner_name(spec: TrainingCluster) -> str:
    """The ConfigMap that holds the injected ``berth run``."""
    return f"{spec.name}-runner"


def runner(spec: TrainingCluster) -> list[dict[str, Any]]:
    """``runner: inject``: a ConfigMap with berth's zipapp (:mod:`berth.pyz`), built
    from the berth that renders, so the pods run the same supervisor as the CLI's version."""
    if not _injected(spec):
        return []
    import base64

    from berth import pyz

    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(spec, runner_name(spec), "training"),
            "binaryData": {RUNNER_FILE: base64.b64encode(pyz.build()).decode()},
        }
    ]


def volumes(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The pod volumes the lifecycle adds: the state emptyDir (no volume in the spec), the runner."""
    out: list[dict[str, Any]] = []
    if spec.spec.lifecycle is not None and state_dir(spec)[1]:
        out.append({"name": STATE_VOLUME, "emptyDir": {}})
    if _injected(spec):
        out.append({"name": RUNNER_VOLUME, "configMap": {"name": runner_name(spec), "defaultMode": 0o444}})
    return out


def mounts(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The trainer's mounts of :func:`volumes`."""
    out: list[dict[str, Any]] = []
    if spec.spec.lifecycle is not None and state_dir(spec)[1]:
        out.append({"name": STATE_VOLUME, "mountPath": STATE_MOUNT})
    if _injected(spec):
        out.append({"name": RUNNER_VOLUME, "mountPath": RUNNER_MOUNT, "readOnly": True})
    return out


def env(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The supervisor's env (docs/lifecycle.md)."""
    lc = spec.spec.lifecycle
    assert lc is not None
    return [
        {"name": ENV_LIFECYCLE, "value": lc.on_complete},
        {"name": "BERTH_MAX_RESTARTS", "value": str(lc.max_restarts)},
        {"name": "BERTH_RESTART_BACKOFF", "value": str(lc.backoff_seconds)},
        {"name": "BERTH_STOP_GRACE", "value": str(lc.stop_grace_seconds)},
        {"name": "BERTH_TERMINATION_GRACE", "value": str(termination_grace(spec))},
        {"name": "BERTH_GANG_PORT", "value": str(lc.gang_port)},
        {"name": "BERTH_STATE_DIR", "value": state_dir(spec)[0]},
        {
            "name": "BERTH_REVISION",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['controller-revision-hash']"}},
        },
        *([{"name": "BERTH_RUNNER", "value": f"{RUNNER_MOUNT}/{RUNNER_FILE}"}] if lc.runner == "inject" else []),
    ]


def rbac(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Role + RoleBinding for the supervisor's ServiceAccount; none without ``spec.lifecycle``."""
    if spec.spec.lifecycle is None:
        return []
    from berth.render.workload import service_account_name

    pods = [f"{spec.name}-{i}" for i in range(spec.spec.replicas)]
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": pods, "verbs": ["patch"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": [spec.name], "verbs": ["patch"]},
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets/scale"],
            "resourceNames": [spec.name],
            "verbs": ["patch"],
        },
    ]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(spec, role_name(spec), "training"),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(spec, role_name(spec), "training"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name(spec)},
            "subjects": [{"kind": "ServiceAccount", "name": service_account_name(spec), "namespace": spec.namespace}],
        },
    ]
