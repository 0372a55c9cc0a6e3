"""Measured I/O against what the volume's StorageClass provisions: the doctor's "slow I/O" finding,
and ``berth bench CLASS``, the probe as a Job on a fresh claim of a class.

The probe itself runs where the volume is mounted (:mod:`berth.runtime.ioprobe`); this module
reads the class (one GET), works out its promise for the volume's size
(:mod:`berth.providers.performance`) and turns every figure that falls short into a
:class:`~berth.kube.doctor.Finding`, worded like the guide's troubleshooting entry ("Slow I/O
Performance": measure, then check the volume's IOPS limits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.contract import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, PART_OF
from berth.errors import BerthError
from berth.kube.doctor import Finding
from berth.providers.performance import Promise, promised

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.kube.status import ClusterState

SLOW_FRACTION = 0.8
"""A figure below this share of the promise is slow I/O (clouds deliver the provisioned rate within
about 10 % most of the time; below 80 % something else is the bottleneck)."""


@dataclass(frozen=True)
class Measured:
    """The four figures compared (MiB/s and IOPS), as the probe reports them."""

    seq_read_mib_s: float
    seq_write_mib_s: float
    rand_read_iops: float
    rand_write_iops: float
    queue_depth: int
    direct: bool


def class_promise(kube: Kube, storage_class: str, size_gib: float) -> Promise:
    """What ``storage_class`` provisions for a volume of ``size_gib``; an unknown class is an error."""
    from lightkube.resources.storage_v1 import StorageClass

    sc = kube.get_or_none(StorageClass, storage_class)
    if sc is None:
        raise BerthError(
            f"StorageClass {storage_class} does not exist", "list the classes with `kubectl get storageclass`"
        )
    return promised(sc.provisioner, dict(sc.parameters or {}), size_gib)


def slow_io(measured: Measured, promise: Promise, *, target: str, promised_by: str) -> list[Finding]:
    """One ``slow-io`` warning per figure below :data:`SLOW_FRACTION` of the promise; none without one.

    ``promised_by`` completes "… of the 3,000 IOPS <promised_by>": ``StorageClass gp3 provisions``,
    or ``expected`` for figures given by hand.
    """
    if not measured.direct:
        return []  # page-cache figures say nothing about the disk
    how = f"berth probe, O_DIRECT, 4 KiB random at queue depth {measured.queue_depth}, 1 MiB sequential"
    checks: list[tuple[str, float, float | None, str]] = [
        ("4 KiB random read", measured.rand_read_iops, promise.iops, "IOPS"),
        ("4 KiB random write", measured.rand_write_iops, promise.iops, "IOPS"),
        ("sequential read", measured.seq_read_mib_s, promise.throughput_mib_s, "MiB/s"),
        ("sequential write", measured.seq_write_mib_s, promise.throughput_mib_s, "MiB/s"),
    ]
    found = []
    for what, got, want, unit in checks:
        if want is None or got >= SLOW_FRACTION * want:
            continue
        found.append(
            Finding(
                "warning",
                "slow-io",
                target,
                f"slow I/O: {what} {got:,.0f} {unit}, {got / want:.0%} of the {want:,.0f} {unit} "
                f"{promised_by} ({promise.source})",
                how,
                _fix(unit, measured.queue_depth),
            )
        )
    return found


def _fix(unit: str, depth: int) -> str:
    if unit == "IOPS":
        return (
            f"check the volume's provisioned IOPS (kubectl describe pv) and the node's EBS/disk IOPS limit "
            f"(measured with {depth} I/Os in flight: a workload with fewer gets less); raise `iops` in the "
            "class if the disk is the limit"
        )
    return (
        "check the node type's storage bandwidth (a small instance caps every volume) and the class's "
        "provisioned throughput; raise `throughput` in the class if the disk is the limit"
    )


BENCH_MOUNT = "/probe"
BENCH_COMPONENT = "bench"
BENCH_USER = 1000  # any non-root user: the claim's fsGroup makes the fresh volume writable by it


@dataclass
class BenchResult:
    """What ``berth bench`` measured in its pod, the class's promise, and the slow figures."""

    report: dict[str, Any]
    promise: Promise
    findings: list[Finding]
    node: str | None

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for ``-o json`` (the probe's keys, then what the class promises)."""
        return {
            **self.report,
            "node": self.node,
            "promised": {
                "iops": self.promise.iops,
                "throughputMiBps": self.promise.throughput_mib_s,
                "source": self.promise.source,
            },
            "findings": [f.to_json() for f in self.findings],
        }


def bench_objects(
    name: str,
    namespace: str,
    storage_class: str,
    size: str,
    image: str,
    probe_args: list[str],
    *,
    node_selector: dict[str, str] | None = None,
    pull_policy: str | None = None,
    deadline_s: int = 600,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh claim of ``storage_class`` and a Job that runs ``berth probe`` on it once.

    The probe's JSON goes to the container's termination message (``/dev/termination-log``), so
    reading it needs only ``get pods``, not ``pods/log``; on failure the kubelet falls back to the
    log's tail, which holds the probe's one error line.
    """
    labels = {
        LABEL_INSTANCE: name,
        LABEL_COMPONENT: BENCH_COMPONENT,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        },
    }
    container: dict[str, Any] = {
        "name": "probe",
        "image": image,
        "command": ["sh", "-c", 'exec berth probe "$0" -o json "$@" > /dev/termination-log', BENCH_MOUNT, *probe_args],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "probe", "mountPath": BENCH_MOUNT}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": BENCH_USER,
            "fsGroup": BENCH_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "probe", "persistentVolumeClaim": {"claimName": name}}],
    }
    if node_selector:
        pod["nodeSelector"] = node_selector
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s,
            "ttlSecondsAfterFinished": 600,  # a safety net when berth is killed before it cleans up
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    return claim, job


def bench(
    kube: Kube,
    storage_class: str,
    *,
    size: str,
    image: str,
    probe_args: list[str],
    node_selector: dict[str, str] | None = None,
    pull_policy: str | None = None,
    timeout_s: float = 600,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Run the probe on a fresh claim of ``storage_class``; the claim and the Job are deleted afterwards."""
    import json
    import time
    import uuid
    from functools import partial

    from lightkube.codecs import from_dict
    from lightkube.resources.batch_v1 import Job
    from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
    from lightkube.types import CascadeType

    from berth.quantity import parse_quantity

    say = progress or (lambda _line: None)
    promise = class_promise(kube, storage_class, float(parse_quantity(size)) / 2**30)
    name = f"berth-bench-{uuid.uuid4().hex[:6]}"
    ns = kube.namespace
    claim, job = bench_objects(
        name,
        ns,
        storage_class,
        size,
        image,
        probe_args,
        node_selector=node_selector,
        pull_policy=pull_policy,
        deadline_s=int(timeout_s),
    )
    created: list[tuple[Any, str]] = []
    try:
        for obj, model in ((claim, PersistentVolumeClaim), (job, Job)):
            kube.call(f"create {obj['kind']} {ns}/{name}", partial(kube.client.create, from_dict(obj)))
            created.append((model, obj["kind"]))
        say(f"created claim {name} ({size} of {storage_class}) and Job {name}")
        deadline, last = time.monotonic() + timeout_s, ""
        while True:
            pods = kube.call(
                f"list pods of Job {name}",
                lambda: list(kube.client.list(Pod, namespace=ns, labels={LABEL_INSTANCE: name})),
            )
            pod = pods[0] if pods else None
            state = _pod_state(pod)
            if state != last:
                say(state)
                last = state
            finished = _terminated(pod)
            if finished is not None:
                code, message = finished
                if code != 0:
                    where = pod.metadata.name if pod is not None and pod.metadata else name
                    raise _probe_failed(f"{ns}/{where}", code, message)
                try:
                    report: dict[str, Any] = json.loads(message)
                except ValueError:
                    raise BerthError(
                        f"the probe in Job {ns}/{name} wrote no result: {message[:200]!r}",
                        f"is berth installed in image {image}? `berth probe` must be on its PATH",
                    ) from None
                break
            if time.monotonic() >= deadline:
                raise BerthError(
                    f"timed out after {timeout_s:.0f}s waiting for Job {ns}/{name}: {last}",
                    "a claim that never binds or a pod that never schedules: see `berth doctor`-style "
                    "reasons above; the claim and Job are deleted",
                )
            time.sleep(1.0)
    finally:
        for model, kind in reversed(created):
            kube.call(
                f"delete {kind} {ns}/{name}",
                partial(kube.client.delete, model, name, namespace=ns, cascade=CascadeType.BACKGROUND),
            )
    node = pod.spec.nodeName if pod is not None and pod.spec is not None else None
    measured = Measured(
        float(report["seqReadMiBps"]),
        float(report["seqWriteMiBps"]),
        float(report["randReadIops"]),
        float(report["randWriteIops"]),
        int(report["queueDepth"]),
        bool(report["direct"]),
    )
    findings = slow_io(
        measured,
        promise,
        target=f"StorageClass {storage_class}",
        promised_by=f"StorageClass {storage_class} provisions",
    )
    return BenchResult(report, promise, findings, node)


def _probe_failed(pod: str, code: int, message: str) -> BerthError:
    """The probe's own error and hint, from the log tail the kubelet put in the termination message."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    error = next((x.removeprefix("error: ") for x in reversed(lines) if x.startswith("error: ")), None)
    hint = next((x.removeprefix("hint: ") for x in reversed(lines) if x.startswith("hint: ")), None)
    return BerthError(
        f"the probe failed in pod {pod}: {error or (lines[-1] if lines else f'exit code {code}')}",
        f"{hint + '; ' if hint else ''}the claim and Job are deleted",
    )


def _pod_state(pod: Any) -> str:
    """One line: where the bench pod is (the scheduler's or the kubelet's words while it waits)."""
    if pod is None:
        return "waiting for the Job controller to create the pod"
    status = pod.status
    phase = (status.phase if status else None) or "Pending"
    for cond in (status.conditions if status else None) or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.message:
            return f"pod {pod.metadata.name}: {phase}: {cond.message}"
    for cs in (status.containerStatuses if status else None) or []:
        if cs.state and cs.state.waiting and cs.state.waiting.reason:
            return f"pod {pod.metadata.name}: {cs.state.waiting.reason}"
    return f"pod {pod.metadata.name}: {phase}" + (" (measuring)" if phase == "Running" else "")


def _terminated(pod: Any) -> tuple[int, str] | None:
    """Exit code and termination message once the probe container has ended."""
    for cs in (pod.status.containerStatuses if pod is not None and pod.status else None) or []:
        if cs.state and cs.state.terminated:
            return int(cs.state.terminated.exitCode), str(cs.state.terminated.message or "")
    return None


@dataclass(frozen=True)
class ClassProbe:
    """What ``doctor --probe`` benches: one StorageClass of the cluster, at its largest volume's size."""

    storage_class: str
    size: str
    volumes: tuple[str, ...]


def classes_to_probe(state: ClusterState) -> list[ClassProbe]:
    """Each StorageClass of the cluster's volumes (claim templates and shared claims), at the largest size.

    Templates come from the StatefulSet, so a cluster whose claims are not created yet is probed
    all the same. The largest volume is the one the per-GiB rules promise most for, so the fresh
    claim is held to what the cluster's biggest volume should deliver. A shared claim without a
    class (a static PV) cannot be benched on a fresh claim and is left out.
    """
    from berth.quantity import parse_quantity

    found: list[tuple[str, str, str]] = []  # (class, size, volume)
    sts_spec = (state.statefulset or {}).get("spec") or {}
    for template in sts_spec.get("volumeClaimTemplates") or []:
        spec = template.get("spec") or {}
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if spec.get("storageClassName") and size:
            found.append((spec["storageClassName"], str(size), f"{template['metadata']['name']} (per replica)"))
    for claim in state.shared:
        size = claim.requested or claim.capacity
        if claim.storage_class and size:
            found.append((claim.storage_class, size, f"{claim.name} (shared)"))
    largest: dict[str, tuple[float, str]] = {}
    volumes: dict[str, list[str]] = {}
    for storage_class, size, volume in found:
        volumes.setdefault(storage_class, []).append(volume)
        value = float(parse_quantity(size))
        if storage_class not in largest or value > largest[storage_class][0]:
            largest[storage_class] = (value, size)
    return [ClassProbe(sc, largest[sc][1], tuple(volumes[sc])) for sc in sorted(largest)]


def probe_cluster(
    kube: Kube,
    state: ClusterState,
    *,
    probe_args: list[str],
    timeout_s: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """``berth doctor --probe``: ``bench`` on a fresh claim of each class, with the trainer's image and placement.

    The Job runs the trainer's image (it has berth, as every berth pod's image does or is given),
    its pull policy and node selector, so it lands where the cluster's pods land. A class whose
    bench cannot run is one ``probe-failed`` warning with the reason; the others are still measured.
    Returns each bench's report (``bench``'s JSON, plus ``storageClass``, ``size`` and ``volumes``) and the findings.
    """
    template = ((state.statefulset or {}).get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        raise BerthError(
            f"cluster {state.name} has no StatefulSet in {state.namespace}: nothing to take the probe's image from",
            "run `berth up` first, or measure a class by hand with `berth bench CLASS --image IMAGE`",
        )
    trainer = containers[0]
    say = progress or (lambda _line: None)
    reports: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for target in classes_to_probe(state):
        say(f"StorageClass {target.storage_class}: a fresh {target.size} claim (as {', '.join(target.volumes)})")

        def said(line: str, sc: str = target.storage_class) -> None:
            say(f"StorageClass {sc}: {line}")

        try:
            result = bench(
                kube,
                target.storage_class,
                size=target.size,
                image=str(trainer["image"]),
                probe_args=probe_args,
                node_selector=dict(pod.get("nodeSelector") or {}),
                pull_policy=trainer.get("imagePullPolicy"),
                timeout_s=timeout_s,
                progress=said,
            )
        except BerthError as err:
            findings.append(
                Finding(
                    "warning",
                    "probe-failed",
                    f"StorageClass {target.storage_class}",
                    "the I/O probe could not run, so its speed is unknown",
                    err.message,
                    err.hint or f"run `berth bench {target.storage_class} --image IMAGE` to see the pod",
                )
            )
            continue
        probed = {"storageClass": target.storage_class, "size": target.size, "volumes": list(target.volumes)}
        reports.append({**probed, **result.to_json()})
        findings.extend(result.findings)
    return reports, findings
