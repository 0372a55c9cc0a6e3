"""What a training cluster looks like right now, from a constant number of API calls.

Two halves: :func:`fetch` makes one GET of the StatefulSet, one list of its pods (label
selector), one list of the namespace's claims and one list of nodes (for zones): four
requests whether the cluster has 3 replicas or 3000. With ``volume_stats`` (``berth status``)
it adds one kubelet stats summary per real node that runs a pod of the cluster
(:mod:`berth.kube.volumestats`): constant in the replica count too. :func:`classify` turns what was fetched
into a :class:`ClusterState` (ordinals, readiness reasons, orphaned and shared claims,
rollout phase) without I/O or a clock of its own, so every rule is unit-tested without a
cluster. ``wait`` polls the same snapshot, ``gc`` and ``scale`` reuse its claim classification.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.contract import ANNOTATION_RANK_STATE, ANNOTATION_RUN_STATE, ENV_LIFECYCLE, LABEL_INSTANCE, LABEL_ZONE
from berth.errors import BerthError
from berth.kube.claims import parse_claim_name
from berth.kube.deletion import is_protected
from berth.kube.staging import StagingRow, staging_rows
from berth.kube.volumestats import Usage

if TYPE_CHECKING:
    from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

    from berth.kube.client import Kube

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
RUN_PHASES = ("Pending", "Starting", "Running", "Restarting", "Succeeded", "Failed")


def _json_annotation(annotations: dict[str, str] | None, key: str) -> dict[str, Any] | None:
    """A JSON annotation the supervisor publishes; None when absent or not an object."""
    import json

    raw = (annotations or {}).get(key)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class RankRun:
    """One rank as its supervisor published it (pod annotation ``berth.dev/rank``)."""

    phase: str
    restarts: int
    step: int | None
    exit_code: int | None
    last_line: str | None
    last_stop_seconds: float | None = None  # the last SIGTERM's final save, measured (kept on the volume)

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> RankRun | None:
        if data is None:
            return None
        phase = str(data.get("phase") or "Pending")

        def opt_int(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        line = data.get("lastLine")
        stop = data.get("lastStopSeconds")
        return cls(
            phase=phase if phase in RUN_PHASES else "Pending",
            restarts=opt_int("restarts") or 0,
            step=opt_int("step"),
            exit_code=opt_int("exitCode"),
            last_line=str(line) if line is not None else None,
            last_stop_seconds=float(stop) if isinstance(stop, int | float) and not isinstance(stop, bool) else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "restarts": self.restarts,
            "step": self.step,
            "exitCode": self.exit_code,
            "lastLine": self.last_line,
            "lastStopSeconds": self.last_stop_seconds,
        }


@dataclass
class RunStatus:
    """The run of a ``spec.lifecycle`` cluster: its phase and, when it failed, why."""

    phase: str
    restarts: int = 0
    failures: int = 0
    generation: int = 0
    reason: str | None = None
    failed_rank: int | None = None
    exit_code: int | None = None
    last_line: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "restarts": self.restarts,
            "failures": self.failures,
            "generation": self.generation,
            "reason": self.reason,
            "failedRank": self.failed_rank,
            "exitCode": self.exit_code,
            "lastLine": self.last_line,
        }


@dataclass
class PodRow:
    """One training pod."""

    name: str
    ordinal: int | None
    phase: str
    ready: bool
    node: str | None
    zone: str | None
    restarts: int
    revision: str | None
    reason: str | None = None
    claims: list[str] = field(default_factory=list)
    run: RankRun | None = None
    grace_seconds: int | None = None  # terminationGracePeriodSeconds: what a SIGTERMed trainer gets to save

    def to_json(self) -> dict[str, Any]:
        """One pod in ``berth status -o json``."""
        return {
            "run": self.run.to_json() if self.run else None,
            "name": self.name,
            "ordinal": self.ordinal,
            "phase": self.phase,
            "ready": self.ready,
            "node": self.node,
            "zone": self.zone,
            "restarts": self.restarts,
            "revision": self.revision,
            "reason": self.reason,
            "claims": self.claims,
            "terminationGracePeriodSeconds": self.grace_seconds,
        }


@dataclass
class ClaimRow:
    """One PVC: per replica (template + ordinal) or shared by all pods."""

    name: str
    template: str | None
    ordinal: int | None
    phase: str
    storage_class: str | None
    requested: str | None
    capacity: str | None
    volume: str | None
    age_s: float | None
    protected: bool
    labels: dict[str, str] = field(default_factory=dict)
    mounted_by: list[str] = field(default_factory=list)
    orphaned: bool = False
    deleting: bool = False
    usage: Usage | None = None  # the kubelet's volume stats, when fetched and available
    usage_unknown: str | None = None  # why there is no usage (None when usage is set or not asked for)

    @property
    def shared_fs(self) -> bool:
        """The kubelet's figures are a larger filesystem's (a local/hostPath directory), not the claim's."""
        from berth.quantity import parse_quantity

        if self.usage is None or not self.capacity:
            return False
        try:
            return self.usage.shared_fs(int(parse_quantity(self.capacity)))
        except ValueError:
            return False

    def to_json(self) -> dict[str, Any]:
        """One claim in ``berth status -o json``."""
        return {
            "name": self.name,
            "template": self.template,
            "ordinal": self.ordinal,
            "phase": self.phase,
            "storageClass": self.storage_class,
            "requested": self.requested,
            "capacity": self.capacity,
            "volume": self.volume,
            "ageSeconds": self.age_s,
            "protected": self.protected,
            "labels": self.labels,
            "mountedBy": self.mounted_by,
            "orphaned": self.orphaned,
            "deleting": self.deleting,
            "usage": {**self.usage.to_json(), "sharedFilesystem": self.shared_fs} if self.usage else None,
            "usageUnknown": self.usage_unknown,
        }


@dataclass
class ClusterState:
    """A snapshot of one training cluster: StatefulSet, pods, claims."""

    name: str
    namespace: str
    exists: bool
    replicas: int
    ready_replicas: int
    updated_replicas: int
    current_revision: str | None
    update_revision: str | None
    generation_observed: bool
    retention: dict[str, str]
    templates: list[str]
    pods: list[PodRow]
    claims: list[ClaimRow]
    shared: list[ClaimRow]
    statefulset: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    run: RunStatus | None = None  # None: no spec.lifecycle (a preamble-only pod has no run phase)
    datasets: list[StagingRow] = field(default_factory=list)  # spec.datasets: populate pods, init containers

    @property
    def rollout(self) -> str:
        """One phrase: complete, rolling out, waiting for readiness, or absent."""
        if not self.exists:
            return "absent"
        if not self.generation_observed:
            return "pending: the controller has not seen the latest change"
        if (
            self.update_revision
            and self.current_revision != self.update_revision
            and self.updated_replicas < self.replicas
        ):
            return f"rolling out: {self.updated_replicas}/{self.replicas} updated"
        if self.ready_replicas < self.replicas:
            return f"waiting: {self.ready_replicas}/{self.replicas} ready"
        return "complete"

    @property
    def orphans(self) -> list[ClaimRow]:
        """Per-replica claims whose ordinal is at or above the replica count."""
        return [c for c in self.claims if c.orphaned]

    def to_json(self) -> dict[str, Any]:
        """``berth status -o json`` (camelCase keys like the API's; without the raw StatefulSet)."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
            "updatedReplicas": self.updated_replicas,
            "currentRevision": self.current_revision,
            "updateRevision": self.update_revision,
            "generationObserved": self.generation_observed,
            "rollout": self.rollout,
            "retention": self.retention,
            "templates": self.templates,
            "pods": [p.to_json() for p in self.pods],
            "claims": [c.to_json() for c in self.claims],
            "shared": [c.to_json() for c in self.shared],
            "notes": self.notes,
            "run": self.run.to_json() if self.run else None,
            "datasets": [d.to_json() for d in self.datasets],
        }


@dataclass
class Fetched:
    """What :func:`fetch` read from the API server: the only input :func:`classify` needs."""

    statefulset: dict[str, Any] | None
    pods: list[Pod]
    claims: list[PersistentVolumeClaim]
    zones: dict[str, str]  # node name → zone label, empty when nodes were not listed
    notes: list[str] = field(default_factory=list)
    usage: dict[tuple[str, str], Usage] | None = None  # (namespace, claim) → stats; None: not asked for
    kwok_nodes: set[str] = field(default_factory=set)  # nodes without a kubelet (no stats there)
    stats_nodes: set[str] = field(default_factory=set)  # nodes whose kubelet answered the stats call


def _age(created: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if created is None else (now - created).total_seconds()


def _ordinal(pod: Pod, sts_name: str) -> int | None:
    labels = pod.metadata.labels or {} if pod.metadata else {}
    raw = labels.get(POD_INDEX_LABEL)
    if raw is None and pod.metadata and pod.metadata.name:
        prefix = f"{sts_name}-"
        rest = pod.metadata.name[len(prefix) :] if pod.metadata.name.startswith(prefix) else ""
        raw = rest if rest.isdigit() else None
    return int(raw) if raw is not None and raw.isdigit() else None


def _pod_reason(pod: Pod) -> str | None:
    """Why a pod is not ready: the scheduler's or kubelet's own words."""
    st = pod.status
    if st is None:
        return None
    if pod.metadata and pod.metadata.deletionTimestamp:
        return "terminating"
    for ic in st.initContainerStatuses or []:  # in order: the first one not done is where the pod is
        state = ic.state
        if state is None or (state.terminated is not None and state.terminated.exitCode == 0):
            continue
        if state.running is not None:
            return f"init container {ic.name} running"
        if state.terminated is not None:
            return f"init container {ic.name} failed (exit {state.terminated.exitCode})"
        if state.waiting is not None and state.waiting.reason not in (None, "PodInitializing"):
            said = f": {state.waiting.message}" if state.waiting.message else ""
            return f"init container {ic.name}: {state.waiting.reason}{said}"
        break
    for cs in st.containerStatuses or []:
        if cs.state and cs.state.waiting and cs.state.waiting.reason:
            msg = cs.state.waiting.message
            return f"{cs.state.waiting.reason}: {msg}" if msg else cs.state.waiting.reason
        if cs.state and cs.state.terminated and cs.state.terminated.reason:
            return f"terminated: {cs.state.terminated.reason}"
    for cond in st.conditions or []:
        if cond.status == "False" and cond.message:
            return f"{cond.type}: {cond.message}"
    return st.reason


def _matches(pod: Pod, selector: dict[str, str]) -> bool:
    labels = (pod.metadata.labels or {}) if pod.metadata else {}
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_row(pod: Pod, sts_name: str, zones: dict[str, str]) -> PodRow:
    st = pod.status
    ready = any(c.type == "Ready" and c.status == "True" for c in (st.conditions or [])) if st else False
    node = pod.spec.nodeName if pod.spec else None
    claims = [
        v.persistentVolumeClaim.claimName
        for v in (pod.spec.volumes or [] if pod.spec else [])
        if v.persistentVolumeClaim
    ]
    labels = (pod.metadata.labels or {}) if pod.metadata else {}
    return PodRow(
        name=pod.metadata.name if pod.metadata and pod.metadata.name else "?",
        ordinal=_ordinal(pod, sts_name),
        phase=(st.phase if st else None) or "Unknown",
        ready=ready,
        node=node,
        zone=zones.get(node) if node else None,
        restarts=sum(cs.restartCount for cs in (st.containerStatuses or [])) if st else 0,
        revision=labels.get("controller-revision-hash"),
        reason=None if ready else _pod_reason(pod),
        claims=claims,
        grace_seconds=pod.spec.terminationGracePeriodSeconds if pod.spec else None,
        run=RankRun.parse(_json_annotation(pod.metadata.annotations if pod.metadata else None, ANNOTATION_RANK_STATE)),
    )


def _claim_row(
    pvc: PersistentVolumeClaim, sts_name: str, templates: list[str], replicas: int, now: dt.datetime
) -> ClaimRow:
    md, spec, st = pvc.metadata, pvc.spec, pvc.status
    name = md.name if md and md.name else "?"
    ref = parse_claim_name(name, sts_name, templates)
    requests = (spec.resources.requests or {}) if spec and spec.resources else {}
    capacity = (st.capacity or {}) if st else {}
    return ClaimRow(
        name=name,
        template=ref.template if ref else None,
        ordinal=ref.ordinal if ref else None,
        phase=(st.phase if st else None) or "Unknown",
        storage_class=spec.storageClassName if spec else None,
        requested=requests.get("storage"),
        capacity=capacity.get("storage"),
        volume=spec.volumeName if spec else None,
        age_s=_age(md.creationTimestamp if md else None, now),
        protected=is_protected(md.annotations if md else None),
        labels=dict((md.labels or {}) if md else {}),
        orphaned=ref is not None and ref.ordinal >= replicas,
        deleting=bool(md and md.deletionTimestamp),
    )


def _selector(sts: dict[str, Any] | None, name: str) -> dict[str, str]:
    """The StatefulSet's pod selector; berth's instance label when the StatefulSet is gone."""
    spec = (sts or {}).get("spec") or {}
    return dict((spec.get("selector") or {}).get("matchLabels") or {LABEL_INSTANCE: name})


def fetch(
    kube: Kube,
    name: str,
    namespace: str,
    *,
    nodes: bool = True,
    all_pods: bool = False,
    require: bool = True,
    volume_stats: bool = False,
) -> Fetched:
    """Read the cluster ``name``: its StatefulSet, pods, the namespace's claims and (``nodes``) node zones.

    ``all_pods`` lists every pod of the namespace (gc must see any mount); ``require`` raises a
    precise error when there is no such StatefulSet; ``volume_stats`` asks the kubelet of each
    node running one of the pods for its volume stats (one call per node).
    """
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Node, PersistentVolumeClaim, Pod

    from berth.kube import volumestats
    from berth.kube.errors import Forbidden

    sts = kube.get_or_none(StatefulSet, name, namespace)
    if sts is None and require:
        _missing(kube, name, namespace)
    sts_dict: dict[str, Any] | None = dict(sts.to_dict()) if sts is not None else None
    notes: list[str] = []
    zones: dict[str, str] = {}
    kwok: set[str] = set()
    if nodes:
        try:
            listed = kube.call(
                "list nodes", lambda: [n.metadata for n in kube.client.list(Node) if n.metadata and n.metadata.name]
            )
            zones = {str(m.name): (m.labels or {}).get(LABEL_ZONE, "") for m in listed}
            kwok = {str(m.name) for m in listed if volumestats.is_kwok(m.annotations)}
        except Forbidden:
            notes.append("zones unknown: listing nodes is forbidden (optional ClusterRole in docs/rbac.md)")
    selector = _selector(sts_dict, name)
    # By instance only: the same one call also returns the populate Jobs' pods (spec.datasets).
    labels: dict[str, Any] | None = None if all_pods else {LABEL_INSTANCE: selector.get(LABEL_INSTANCE, name)}
    pod_list = kube.call(
        f"list pods in {namespace}", lambda: list(kube.client.list(Pod, namespace=namespace, labels=labels))
    )
    pvc_list = kube.call(
        f"list PersistentVolumeClaims in {namespace}",
        lambda: list(kube.client.list(PersistentVolumeClaim, namespace=namespace)),
    )
    usage, answered = None, set()
    if volume_stats:
        running = {p.spec.nodeName for p in pod_list if p.spec and p.spec.nodeName and _matches(p, selector)}
        stats = volumestats.collect(running, kwok, volumestats.getter(kube))
        usage = stats.usage
        notes.extend(stats.notes)
        answered = stats.answered
    return Fetched(sts_dict, pod_list, pvc_list, zones, notes, usage, kwok, answered)


def classify(name: str, namespace: str, fetched: Fetched, *, now: dt.datetime) -> ClusterState:
    """The state of cluster ``name`` from fetched objects: pure, ``now`` dates the claims' ages."""
    sts_dict = fetched.statefulset
    spec = sts_dict.get("spec", {}) if sts_dict else {}
    status = sts_dict.get("status", {}) if sts_dict else {}
    selector = _selector(sts_dict, name)
    templates = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []]
    replicas = int(spec.get("replicas", 1)) if sts_dict else 0

    rows = [_pod_row(p, name, fetched.zones) for p in fetched.pods]
    mine = [(row, pod) for row, pod in zip(rows, fetched.pods, strict=True) if _matches(pod, selector)]
    ours = [row for row, _ in mine if row.ordinal is not None]
    shared_names = {
        v["persistentVolumeClaim"]["claimName"]
        for v in (spec.get("template", {}).get("spec", {}).get("volumes") or [])
        if v.get("persistentVolumeClaim")
    }
    mounts: dict[str, list[str]] = {}
    for pod_row in rows:
        for claim in pod_row.claims:
            mounts.setdefault(claim, []).append(pod_row.name)
    claims, shared = [], []
    nodes_of = {p.name: p.node for p in rows}
    for pvc in fetched.claims:
        row = _claim_row(pvc, name, templates, replicas, now)
        row.mounted_by = sorted(mounts.get(row.name, []))
        if fetched.usage is not None:
            _attach_usage(row, namespace, fetched, [nodes_of.get(p) for p in row.mounted_by])
        if row.template is not None:
            claims.append(row)
        elif row.name in shared_names:
            shared.append(row)
    claims.sort(key=lambda c: (c.template or "", c.ordinal or 0))
    ours.sort(key=lambda p: p.ordinal or 0)
    return ClusterState(
        run=run_status(sts_dict, ours),
        name=name,
        namespace=namespace,
        exists=sts_dict is not None,
        replicas=replicas,
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        current_revision=status.get("currentRevision"),
        update_revision=status.get("updateRevision"),
        generation_observed=int(status.get("observedGeneration") or 0)
        >= int((sts_dict or {}).get("metadata", {}).get("generation") or 0),
        retention=dict(spec.get("persistentVolumeClaimRetentionPolicy") or {}),
        templates=templates,
        pods=ours,
        claims=claims,
        shared=shared,
        statefulset=sts_dict,
        notes=list(fetched.notes),
        datasets=staging_rows(name, fetched.pods, [pod for row, pod in mine if row.ordinal is not None]),
    )


def _attach_usage(row: ClaimRow, namespace: str, fetched: Fetched, nodes: list[str | None]) -> None:
    """The claim's kubelet stats, or why there are none (not mounted, kwok node, none reported)."""
    assert fetched.usage is not None
    row.usage = fetched.usage.get((namespace, row.name))
    if row.usage is not None:
        return
    placed = [n for n in nodes if n]
    if not placed:
        row.usage_unknown = "not mounted by a running pod"
    elif all(n in fetched.kwok_nodes for n in placed):
        row.usage_unknown = "kwok node: no kubelet, no stats"
    elif any(n in fetched.stats_nodes for n in placed):
        row.usage_unknown = "the kubelet reports no stats for this volume (e.g. hostPath has no metrics)"
    else:
        row.usage_unknown = "unknown (see the notes)"


def collect(kube: Kube, name: str, namespace: str, **flags: bool) -> ClusterState:
    """Snapshot the cluster ``name``: :func:`fetch` then :func:`classify` (FLAGS: fetch's keyword flags)."""
    fetched = fetch(kube, name, namespace, **flags)
    return classify(name, namespace, fetched, now=dt.datetime.now(dt.UTC))


def _missing(kube: Kube, name: str, namespace: str) -> None:
    """Raise the precise error: missing namespace, or no such cluster in it."""
    from lightkube.resources.core_v1 import Namespace

    from berth.kube.errors import Forbidden, NamespaceMissing

    try:
        exists = kube.get_or_none(Namespace, namespace) is not None
    except Forbidden:
        exists = True
    if not exists:
        raise NamespaceMissing(
            f"namespace {namespace} does not exist", "pass -n with the namespace of the training cluster"
        )
    raise BerthError(
        f"no training cluster {name} in namespace {namespace} (no StatefulSet of that name)",
        "create it with `berth up SPEC`, or pass -n with its namespace",
    )


def _supervised(sts: dict[str, Any]) -> bool:
    """Whether the StatefulSet's trainer runs under ``berth run``'s supervisor (``spec.lifecycle``)."""
    pod = ((sts.get("spec") or {}).get("template") or {}).get("spec") or {}
    return any(e.get("name") == ENV_LIFECYCLE for c in pod.get("containers") or [] for e in c.get("env") or [])


def run_status(sts: dict[str, Any] | None, pods: list[PodRow]) -> RunStatus | None:
    """The run's phase from what was fetched: the StatefulSet's ``berth.dev/run`` and the pods (pure).

    The StatefulSet's annotation (rank 0's coordinator) survives scaling to zero, so a finished
    run still says Succeeded or Failed; one written for another pod template revision is stale
    (``berth up`` with a changed spec starts a new run).
    """
    if sts is None or not _supervised(sts):
        return None
    md = sts.get("metadata") or {}
    data = _json_annotation(md.get("annotations"), ANNOTATION_RUN_STATE)
    revision = (sts.get("status") or {}).get("updateRevision")
    if data and data.get("revision") and revision and data["revision"] != revision:
        data = None
    published = str((data or {}).get("phase") or "")
    replicas = int((sts.get("spec") or {}).get("replicas", 1))

    def num(key: str) -> int:
        value = (data or {}).get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def opt(key: str) -> Any:
        return (data or {}).get(key)

    if published in ("Succeeded", "Failed"):
        phase = published
    elif replicas == 0 or len(pods) < replicas or any(p.phase != "Running" for p in pods):
        phase = "Restarting" if published == "Restarting" else "Pending"
    elif published in RUN_PHASES:
        phase = published
    else:
        phase = "Starting"
    return RunStatus(
        phase=phase,
        restarts=num("restarts"),
        failures=num("failures"),
        generation=num("generation"),
        reason=opt("reason"),
        failed_rank=opt("failedRank"),
        exit_code=opt("exitCode"),
        last_line=opt("lastLine"),
    )
