"""``berth doctor``: why a training cluster is not healthy, in the guide's troubleshooting terms.

The guide's troubleshooting section is a list of kubectl commands to run and read:
``get pvc``, ``describe pod``, provisioner logs. The doctor reads the same API objects
(StatefulSet, pods, claims, events, StorageClasses, volumes, nodes, the PDB) in a
constant number of list calls, and turns what the scheduler, the volume binder and
the kubelet said into findings: what is wrong, the evidence, and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from berth.contract import GPU_RESOURCE, LABEL_ZONE, STOP_MARGIN_S
from berth.kube.status import ClusterState, collect

if TYPE_CHECKING:
    from berth.kube.client import Kube

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One diagnosis: which object, what is wrong, what Kubernetes said, how to fix it."""

    severity: str  # error | warning | info
    code: str
    object: str
    problem: str
    evidence: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """Plain dict for ``-o json``."""
        return asdict(self)


@dataclass
class Facts:
    """Everything the checks read, fetched once."""

    state: ClusterState
    events: list[dict[str, Any]]
    classes: dict[str, dict[str, Any]]
    volumes: dict[str, dict[str, Any]]
    nodes: list[dict[str, Any]]
    budgets: list[dict[str, Any]]

    def events_for(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Events about one object, newest last."""
        out = [
            e
            for e in self.events
            if (e.get("involvedObject") or {}).get("kind") == kind
            and (e.get("involvedObject") or {}).get("name") == name
        ]
        return sorted(out, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def gather(kube: Kube, name: str, namespace: str) -> Facts:
    """Read the cluster: eight list/get calls whatever the replica count.

    Nodes are listed here once (GPU capacity, zones), so ``collect`` is told not to list them too.
    """
    from lightkube.resources.core_v1 import Event, Node, PersistentVolume
    from lightkube.resources.policy_v1 import PodDisruptionBudget
    from lightkube.resources.storage_v1 import StorageClass

    state = collect(kube, name, namespace, nodes=False)

    def dicts(model: Any, **kw: Any) -> list[dict[str, Any]]:
        return [dict(o.to_dict()) for o in kube.client.list(model, **kw)]

    events = kube.call(f"list events in {namespace}", lambda: dicts(Event, namespace=namespace))
    classes = {c["metadata"]["name"]: c for c in kube.call("list StorageClasses", lambda: dicts(StorageClass))}
    volumes = {v["metadata"]["name"]: v for v in kube.call("list PersistentVolumes", lambda: dicts(PersistentVolume))}
    nodes = kube.call("list nodes", lambda: dicts(Node))
    budgets = kube.call(
        f"list PodDisruptionBudgets in {namespace}", lambda: dicts(PodDisruptionBudget, namespace=namespace)
    )
    return Facts(state, events, classes, volumes, nodes, budgets)


def diagnose(facts: Facts) -> list[Finding]:
    """Every finding, most severe first."""
    return ordered(f for check in CHECKS for f in check(facts))


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by object: how doctor lists findings from any source (checks, probes)."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.object))


def _claims(facts: Facts) -> Iterator[Finding]:
    for claim in [*facts.state.claims, *facts.state.shared]:
        obj = f"pvc/{claim.name}"
        if claim.phase == "Lost":
            yield Finding(
                "error",
                "claim-lost",
                obj,
                "the claim's volume is gone",
                f"PersistentVolume {claim.volume} no longer exists",
                "restore from a Velero snapshot or the checkpoint archive, then recreate the claim",
            )
            continue
        if claim.phase != "Pending":
            continue
        sc_name = claim.storage_class
        if sc_name and sc_name not in facts.classes:
            yield Finding(
                "error",
                "storage-class-missing",
                obj,
                f"StorageClass {sc_name} does not exist",
                f"claim {claim.name} asks for storageClassName {sc_name}",
                "create the class (berth creates the classes a spec declares without `existing: true`) "
                "or point the volume at an existing class",
            )
            continue
        failures = [
            e
            for e in facts.events_for("PersistentVolumeClaim", claim.name)
            if e.get("reason") in ("ProvisioningFailed", "FailedBinding")
        ]
        if failures:
            last = failures[-1]
            yield Finding(
                "error",
                "provisioning-failed",
                obj,
                "the provisioner cannot create the volume",
                f"{last.get('reason')}: {last.get('message')}",
                _provisioning_fix(str(last.get("message") or "")),
            )
            continue
        sc = facts.classes.get(sc_name or "", {})
        waiting = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        if waiting and not any(claim.name in p.claims and p.node for p in facts.state.pods):
            yield Finding(
                "info",
                "claim-waits-for-pod",
                obj,
                "waits for its pod to be scheduled",
                f"class {sc_name} binds on first consumer",
                "nothing to do if the pod schedules; see the pod's finding otherwise",
            )
        elif claim.age_s is not None and claim.age_s > 120:
            provisioner = sc.get("provisioner", "?")
            yield Finding(
                "warning",
                "claim-stuck",
                obj,
                f"Pending for {int(claim.age_s // 60)} min with no error",
                f"provisioner {provisioner} has not acted",
                f"check that the {provisioner} driver runs (e.g. kubectl logs -n kube-system "
                "-l app=ebs-csi-controller)",
            )


def _provisioning_fix(message: str) -> str:
    lowered = message.lower()
    if "quota" in lowered or "limit" in lowered:
        return "raise the cloud or namespace quota, or request less storage"
    if "iops" in lowered or "throughput" in lowered or "invalid" in lowered:
        return "the class parameters are outside the provider's limits: run `berth lint` on the StorageClass"
    if "zone" in lowered or "topology" in lowered:
        return "use volumeBindingMode: WaitForFirstConsumer so the disk is created in the pod's zone"
    return "read the provisioner's log for the cause"


def _pods(facts: Facts) -> Iterator[Finding]:
    for pod in facts.state.pods:
        obj = f"pod/{pod.name}"
        reason = pod.reason or ""
        if pod.phase == "Pending" and not pod.node:
            yield _unschedulable(facts, obj, reason)
        elif "CrashLoopBackOff" in reason or pod.restarts > 3:
            yield Finding(
                "warning",
                "pod-restarting",
                obj,
                f"restarted {pod.restarts} times",
                reason or "container exits repeatedly",
                "read `kubectl logs --previous`; training resumes from the last checkpoint on restart",
            )
        elif "OOMKilled" in reason:
            yield Finding(
                "error",
                "pod-oom",
                obj,
                "the container ran out of memory",
                reason,
                "raise the memory limit or lower the batch size / host-side checkpoint buffers",
            )
        for event in facts.events_for("Pod", pod.name):
            finding = _mount_event(obj, event)
            if finding:
                yield finding
                break


# What else the scheduler says of a pod it cannot place, lowercased: (phrases, code, problem, fix); first match wins.
_SCHEDULER_SAYS = (
    (
        ("unbound immediate persistentvolumeclaims", "persistentvolumeclaim"),
        "unbound-claim",
        "waits for a claim that cannot bind",
        "see the claim's finding above",
    ),
    (
        ("untolerated taint",),
        "untolerated-taint",
        "every fitting node is tainted",
        "add the taint's toleration under spec.scheduling.tolerations",
    ),
    (
        ("node affinity/selector", "didn't match pod's node affinity"),
        "node-selector",
        "no node matches the pod's nodeSelector/affinity",
        "fix spec.scheduling.nodeSelector or label the GPU nodes",
    ),
    (
        ("insufficient",),
        "insufficient-resources",
        "no node has enough free CPU or memory",
        "lower the requests or add nodes",
    ),
)


def _unschedulable(facts: Facts, obj: str, reason: str) -> Finding:
    text = reason.lower()
    if f"insufficient {GPU_RESOURCE}" in text:
        free = sum(int(str((n.get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE, 0))) for n in facts.nodes)
        want = _gpu_request(facts)
        return Finding(
            "error",
            "insufficient-gpu",
            obj,
            "no node has enough free GPUs",
            f"{reason} (cluster allocatable: {free} GPUs; each pod requests {want})",
            "add GPU nodes, lower nvidia.com/gpu per pod, or scale down other GPU workloads",
        )
    # Older schedulers say "volume node affinity conflict"; v1.3x says "didn't match PersistentVolume's node affinity".
    if "volume node affinity conflict" in text or "persistentvolume's node affinity" in text:
        zones = _claim_zones(facts, obj.removeprefix("pod/"))
        node_zones = sorted({(n["metadata"].get("labels") or {}).get(LABEL_ZONE, "?") for n in facts.nodes})
        return Finding(
            "error",
            "zone-mismatch",
            obj,
            "its volume lives in a zone with no usable node",
            f"{reason} (volume zones: {', '.join(zones) or '?'}; node zones: {', '.join(node_zones)})",
            "add a node in the volume's zone; for new claims use WaitForFirstConsumer; or restore the "
            "checkpoint from the archive into a claim in another zone (berth ckpt restore)",
        )
    for phrases, code, problem, fix in _SCHEDULER_SAYS:
        if any(phrase in text for phrase in phrases):
            return Finding("error", code, obj, problem, reason, fix)
    return Finding(
        "warning",
        "pod-pending",
        obj,
        "not scheduled yet",
        reason or "no scheduler message yet",
        "wait a moment, then `kubectl describe pod`",
    )


def _gpu_request(facts: Facts) -> str:
    sts = facts.state.statefulset or {}
    containers = sts.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return str((containers[0].get("resources") or {}).get("limits", {}).get(GPU_RESOURCE, "?"))


def _claim_zones(facts: Facts, pod: str) -> list[str]:
    row = next((p for p in facts.state.pods if p.name == pod), None)
    claims = {c.name: c for c in [*facts.state.claims, *facts.state.shared]}
    zones: set[str] = set()
    for claim in row.claims if row else []:
        pv = facts.volumes.get(claims[claim].volume or "") if claim in claims else None
        terms = (((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required", {})
        for term in terms.get("nodeSelectorTerms") or []:
            for expr in term.get("matchExpressions") or []:
                if expr.get("key") in (
                    LABEL_ZONE,
                    "topology.ebs.csi.aws.com/zone",
                    "failure-domain.beta.kubernetes.io/zone",
                ):
                    zones.update(expr.get("values") or [])
    return sorted(zones)


def _mount_event(obj: str, event: dict[str, Any]) -> Finding | None:
    reason, message = str(event.get("reason") or ""), str(event.get("message") or "")
    lowered = message.lower()
    if reason not in ("FailedMount", "FailedAttachVolume", "FailedMapVolume"):
        return None
    if "multi-attach" in lowered:
        return Finding(
            "error",
            "multi-attach",
            obj,
            "a ReadWriteOnce volume is already attached to another node",
            f"{reason}: {message}",
            "a claim mounted by several pods must be ReadOnlyMany/ReadWriteMany; per-pod data belongs "
            "in volumeClaimTemplates (spec.volumes)",
        )
    if "permission denied" in lowered:
        return Finding(
            "error",
            "mount-permission",
            obj,
            "the volume is not writable by the pod's user",
            f"{reason}: {message}",
            "set securityContext.fsGroup (berth does) and fsGroupChangePolicy: OnRootMismatch",
        )
    return Finding(
        "error",
        "mount-failed",
        obj,
        "a volume could not be mounted",
        f"{reason}: {message}",
        "check the CSI node plugin on that node and the volume's zone",
    )


def _orphans_and_budget(facts: Facts) -> Iterator[Finding]:
    st = facts.state
    for claim in st.orphans:
        yield Finding(
            "info",
            "orphaned-claim",
            f"pvc/{claim.name}",
            f"left by scale-down (ordinal {claim.ordinal} ≥ replicas {st.replicas})",
            f"{claim.requested or '?'} on {claim.storage_class or '?'}, mounted by nothing",
            f"keep it to scale back up with its data, or `berth gc {st.name} --yes`",
        )
    for pdb in facts.budgets:
        status, spec = pdb.get("status") or {}, pdb.get("spec") or {}
        healthy, expected = int(status.get("currentHealthy") or 0), int(status.get("expectedPods") or 0)
        name = pdb["metadata"]["name"]
        if expected and healthy == expected and int(status.get("disruptionsAllowed") or 0) == 0:
            yield Finding(
                "warning",
                "pdb-blocks-drains",
                f"pdb/{name}",
                "allows no disruption although every pod is healthy: node drains will hang",
                f"minAvailable={spec.get('minAvailable')} maxUnavailable={spec.get('maxUnavailable')}, "
                f"{healthy}/{expected} healthy",
                "allow at least one pod (maxUnavailable: 1)",
            )
        if spec.get("unhealthyPodEvictionPolicy") != "AlwaysAllow" and healthy < expected:
            yield Finding(
                "warning",
                "pdb-unhealthy-policy",
                f"pdb/{name}",
                "unhealthy pods count against the budget and block drains",
                f"{healthy}/{expected} healthy, unhealthyPodEvictionPolicy unset",
                "set unhealthyPodEvictionPolicy: AlwaysAllow (berth renders it)",
            )


def _grace_period(facts: Facts) -> Iterator[Finding]:
    """The last SIGTERM's save, measured by the rank's supervisor, against the pod's grace period now.

    The grace period is rendered from the declared ``lifecycle.checkpointSize``; only the stop itself
    shows what the volume and the state really take. Past half of it, a slower save (a bigger state, a
    busier volume) is SIGKILLed mid-write at the next drain or preemption, and the run loses the steps
    since the save before.
    """
    for pod in facts.state.pods:
        took = pod.run.last_stop_seconds if pod.run else None
        grace = pod.grace_seconds
        if took is None or grace is None or took <= grace / 2:
            continue
        cut = took >= grace - STOP_MARGIN_S - 0.5  # the supervisor's SIGKILL, not the trainer's own exit
        yield Finding(
            "error" if cut else "warning",
            "grace-period-tight",
            f"pod/{pod.name}",
            "the last stop was cut short: the trainer was killed before its final save ended"
            if cut
            else "the last stop used most of the grace period: a slower save will be killed mid-write",
            f"the trainer took {took:.0f}s to stop after SIGTERM; terminationGracePeriodSeconds is {grace}",
            f"set spec.lifecycle.checkpointSize to the real state size (the grace period is sized from it) or "
            f"spec.terminationGracePeriodSeconds to at least {math.ceil(2 * took) + STOP_MARGIN_S}",
        )


CHECKS = (_claims, _pods, _orphans_and_budget, _grace_period)
