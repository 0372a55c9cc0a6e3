"""Training custom resources (JobSet, LeaderWorkerSet, Ray, Kubeflow, TrainJob) seen as Jobs.

Each pod template inside one of these objects becomes a *view*: a ``batch/v1`` Job-shaped
Document (``spec.parallelism`` = the pods that template runs at once, ``spec.template`` = the
template) whose ``origin`` is the custom resource and whose ``translate`` maps a key path in
the view back to the path in the resource. Every pod rule (GPU, security, env, rendezvous,
checkpoint) then runs on it unchanged, and findings are placed on the resource's own lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from berth.lint.model import Document, Path
from berth.lint.rules._pod import as_dict, as_list

VIEW_KIND = "Job"

# Kubeflow training-operator v1 kinds and the key holding their replica specs.
KUBEFLOW_REPLICA_SPECS = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
    "MXJob": "mxReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
}
TRAINING_KINDS = frozenset(
    {
        *KUBEFLOW_REPLICA_SPECS,
        "JobSet",
        "LeaderWorkerSet",
        "RayCluster",
        "RayJob",
        "RayService",
        "TrainJob",
        "TrainingRuntime",
        "ClusterTrainingRuntime",
    }
)
# The Trainer's TrainJob fields that map onto the trainer container.
_TRAINER_FIELDS = {"image": "image", "command": "command", "args": "args", "env": "env"}


@dataclass(frozen=True)
class Template:
    """One pod template of a resource: where it is, how many pods run it, where that count is."""

    path: Path
    template: dict[str, Any]
    pods: int
    count_path: Path | None


def _int(value: Any, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _with_claims(template: dict[str, Any], claims: list[str]) -> dict[str, Any]:
    """The template with JobSet ``volumeClaimPolicies`` claims as pod volumes (JobSet adds them so)."""
    pod = as_dict(template.get("spec"))
    have = {as_dict(v).get("name") for v in as_list(pod.get("volumes"))}
    extra = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims if c not in have]
    if not extra:
        return template
    return {**template, "spec": {**pod, "volumes": [*as_list(pod.get("volumes")), *extra]}}


def _jobset_templates(spec: dict[str, Any], base: Path) -> Iterator[Template]:
    """``replicatedJobs[i].template`` (a JobTemplateSpec) of a JobSet spec at ``base``."""
    claims = [
        str(as_dict(t.get("metadata")).get("name"))
        for policy in as_list(spec.get("volumeClaimPolicies"))
        for t in as_list(as_dict(policy).get("templates"))
        if isinstance(t, dict) and as_dict(t.get("metadata")).get("name")
    ]
    for i, rjob in enumerate(as_list(spec.get("replicatedJobs"))):
        rjob = as_dict(rjob)
        job = as_dict(as_dict(rjob.get("template")).get("spec"))
        jpath = (*base, "replicatedJobs", i, "template", "spec")
        pods = _int(rjob.get("replicas")) * _int(job.get("parallelism"))
        template = job.get("template")
        if isinstance(template, dict):
            yield Template((*jpath, "template"), _with_claims(template, claims), pods, (*jpath, "parallelism"))


def _ray_templates(spec: dict[str, Any], base: Path) -> Iterator[Template]:
    head = as_dict(spec.get("headGroupSpec")).get("template")
    if isinstance(head, dict):
        yield Template((*base, "headGroupSpec", "template"), head, 1, None)
    for i, group in enumerate(as_list(spec.get("workerGroupSpecs"))):
        group = as_dict(group)
        template = group.get("template")
        if isinstance(template, dict):
            gpath = (*base, "workerGroupSpecs", i)
            pods = _int(group.get("replicas", group.get("minReplicas")))
            yield Template((*gpath, "template"), template, pods, (*gpath, "replicas"))


def templates(doc: Document) -> Iterator[Template]:
    """Every pod template of a training resource; nothing for other kinds."""
    kind, spec = doc.kind, as_dict(doc.obj.get("spec"))
    if kind in KUBEFLOW_REPLICA_SPECS:
        key = KUBEFLOW_REPLICA_SPECS[kind]
        for role, replica in as_dict(spec.get(key)).items():
            replica = as_dict(replica)
            template = replica.get("template")
            if isinstance(template, dict):
                rpath = ("spec", key, str(role))
                yield Template((*rpath, "template"), template, _int(replica.get("replicas")), (*rpath, "replicas"))
    elif kind == "JobSet":
        yield from _jobset_templates(spec, ("spec",))
    elif kind in ("TrainingRuntime", "ClusterTrainingRuntime"):
        yield from _jobset_templates(as_dict(as_dict(spec.get("template")).get("spec")), ("spec", "template", "spec"))
    elif kind == "LeaderWorkerSet":
        lwt = as_dict(spec.get("leaderWorkerTemplate"))
        base = ("spec", "leaderWorkerTemplate")
        groups, size = _int(spec.get("replicas")), _int(lwt.get("size"))
        leader = lwt.get("leaderTemplate")
        claims = [
            str(as_dict(t.get("metadata")).get("name"))
            for t in as_list(lwt.get("volumeClaimTemplates"))
            if isinstance(t, dict) and as_dict(t.get("metadata")).get("name")
        ]
        if isinstance(leader, dict):
            leader = _with_claims(leader, claims)
            yield Template((*base, "leaderTemplate"), leader, groups, ("spec", "replicas"))
        worker = lwt.get("workerTemplate")
        if isinstance(worker, dict):
            worker = _with_claims(worker, claims)
            pods = groups * max(size - (1 if isinstance(leader, dict) else 0), 1)
            yield Template((*base, "workerTemplate"), worker, pods, (*base, "size"))
    elif kind == "RayCluster":
        yield from _ray_templates(spec, ("spec",))
    elif kind == "RayJob":
        yield from _ray_templates(as_dict(spec.get("rayClusterSpec")), ("spec", "rayClusterSpec"))
    elif kind == "RayService":
        yield from _ray_templates(as_dict(spec.get("rayClusterConfig")), ("spec", "rayClusterConfig"))
    elif kind == "TrainJob":
        yield from _trainjob(spec)


def _trainjob(spec: dict[str, Any]) -> Iterator[Template]:
    """A TrainJob's ``spec.trainer`` as the one ``trainer`` container it configures."""
    trainer = spec.get("trainer")
    if not isinstance(trainer, dict):
        return
    container: dict[str, Any] = {"name": "trainer"}
    container.update({k: trainer[k] for k in _TRAINER_FIELDS if k in trainer})
    if "resourcesPerNode" in trainer:
        container["resources"] = trainer["resourcesPerNode"]
    template = {"spec": {"containers": [container]}}
    yield Template(("spec", "trainer"), template, _int(trainer.get("numNodes")), ("spec", "trainer", "numNodes"))


@dataclass(frozen=True)
class Translate:
    """Maps a key path in a view to the path in its resource (a class, so views pickle to the parent)."""

    template: Path
    count: Path | None
    trainjob: bool

    def __call__(self, path: Path) -> Path | None:
        """The path in the resource; None for a TrainJob finding on a field its runtime owns."""
        if path[:2] == ("spec", "template"):
            rest = path[2:]
            if not self.trainjob:
                return (*self.template, *rest)
            # spec.template.spec.containers[0].X is spec.trainer.X (resources: resourcesPerNode);
            # the rest of the pod (securityContext, volumes) comes from the TrainingRuntime.
            inner = rest[3:] if rest[:3] == ("spec", "containers", 0) else ()
            if not inner or inner[0] not in (*_TRAINER_FIELDS, "resources"):
                return None
            if inner[0] == "resources":
                inner = ("resourcesPerNode", *inner[1:])
            return (*self.template, *inner)
        if path[:2] == ("spec", "parallelism") and self.count is not None:
            return self.count
        if path[:1] == ("spec",):
            return self.template
        return path


def views(doc: Document) -> list[Document]:
    """A Job-shaped view per pod template of a training resource (memoised on the document)."""
    if doc.kind not in TRAINING_KINDS:
        return []
    if "views" not in doc.memo:
        meta = {k: v for k, v in doc.metadata.items() if k in ("name", "namespace", "labels", "annotations")}
        doc.memo["views"] = [
            Document(
                doc.ref,
                {
                    "apiVersion": "batch/v1",
                    "kind": VIEW_KIND,
                    "metadata": meta,
                    "spec": {"parallelism": t.pods, "template": t.template},
                },
                origin=doc,
                translate=Translate(t.path, t.count_path, doc.kind == "TrainJob"),
            )
            for t in templates(doc)
        ]
    found: list[Document] = doc.memo["views"]
    return found
