"""``berth restore NAME --from-archive s3://…``: recreate a cluster lost with its volumes, seeded from its archive.

The cluster comes back from the spec file the user passes (the one ``berth up`` took: after a
lost namespace there is no StatefulSet left to read a stored spec from, and the spec in git is
what a user has), applied exactly as ``berth up`` applies it, with one difference: the
StatefulSet's pods get a ``seed-checkpoints`` init container (``render/backup.py``) that runs
``berth seed`` before the trainer, so every rank's fresh claim holds the archive's newest step
that every rank has. The archive itself is checked by the caller (``runtime/seed.py``: this
layer never imports the runtime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.errors import UsageError
from berth.kube.apply import ObjectResult, apply_objects
from berth.kube.backup import what_is_there
from berth.kube.preflight import checked_stack
from berth.render.backup import SEED_CONTAINER, checkpoint_mount, with_seed

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.kube.status import ClusterState
    from berth.kube.wait import Progress
    from berth.spec.model import TrainingCluster


def check_spec(spec: TrainingCluster) -> None:
    """A spec ``--from-archive`` can seed: a per-replica checkpoint volume and ``spec.archive`` credentials."""
    if spec.spec.archive is None:
        raise UsageError(
            f"{spec.name}: spec.archive is not set, so the seed init container has no credentials",
            "add spec.archive (url, secretName, endpoint) as the cluster had it; the pods read the archive with it",
        )
    if checkpoint_mount(spec) is None:
        raise UsageError(
            f"{spec.name}: no per-replica volume holds the checkpoint directory ({spec.checkpoint_dir()})",
            "spec.volumes needs the checkpoint volume the cluster saved to",
        )


@dataclass
class ArchiveRestorePlan:
    """What ``--from-archive`` would apply, and why it must not (``blockers``)."""

    namespace: str
    objects: list[dict[str, Any]]
    init_container: dict[str, Any]
    blockers: list[str]
    existing_claims: list[str]
    results: list[ObjectResult] = field(default_factory=list)
    state: ClusterState | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "targetNamespace": self.namespace,
            "blockers": self.blockers,
            "existingClaims": self.existing_claims,
            "initContainer": self.init_container,
        }
        if self.results:
            out["objects"] = [r.to_json() for r in self.results]
        if self.state is not None:
            out["ready"] = self.state.ready_replicas
        return out


def plan_archive_restore(kube: Kube, spec: TrainingCluster, url: str) -> ArchiveRestorePlan:
    """Render the stack with the seed init container and check the namespace (nothing is written).

    Refused while the StatefulSet exists (the pods run; the trainer restores from the archive
    by itself on its next start) or claims of the cluster exist: the seed never replaces a
    newer local step, so an existing claim would keep its data and the ranks could resume from
    different places than the user asked for.
    """
    check_spec(spec)
    checked = checked_stack(kube, spec)
    container = with_seed(checked.objects, spec, url)
    replicas, existing = what_is_there(kube, spec.name, spec.namespace)
    blockers: list[str] = []
    if replicas is not None:
        blockers.append(
            f"cluster {spec.name} is running in {spec.namespace} (StatefulSet, {replicas} replicas): "
            "--from-archive recreates a lost cluster; a running one resumes from its archive by itself on "
            f"restart. Stop it first with `berth down {spec.name} -n {spec.namespace} --delete-volumes --yes` "
            "(its volumes are lost), or restore into another namespace with -n"
        )
    if existing:
        blockers.append(
            f"{len(existing)} claims of {spec.name} still exist in {spec.namespace} ({', '.join(existing)}): "
            "the seed never overwrites what a claim holds, so those ranks would keep their own data; "
            f"`berth up` resumes from them, or delete them with `berth down {spec.name} -n {spec.namespace} "
            "--delete-volumes --yes`, or restore into an empty namespace with -n"
        )
    return ArchiveRestorePlan(spec.namespace, checked.to_apply(), container, blockers, existing)


def apply_archive_restore(
    kube: Kube,
    spec: TrainingCluster,
    plan: ArchiveRestorePlan,
    *,
    wait: bool,
    timeout_s: float,
    progress: Progress | None = None,
) -> ArchiveRestorePlan:
    """Apply the planned stack (server-side, field manager berth); with ``wait``, until pods are Ready."""
    assert not plan.blockers
    plan.results = apply_objects(kube, plan.objects)
    if wait:
        from berth.kube.wait import wait_ready

        plan.state = wait_ready(kube, spec.name, spec.namespace, timeout_s=timeout_s, progress=progress)
    return plan


def seed_reports(kube: Kube, spec: TrainingCluster) -> dict[str, str]:
    """Pod name → the seed init container's termination message (its JSON report), for pods that ran it."""
    from lightkube.resources.core_v1 import Pod

    from berth.contract import LABEL_INSTANCE

    pods = kube.call(
        f"list pods of {spec.name}",
        lambda: list(kube.client.list(Pod, namespace=spec.namespace, labels={LABEL_INSTANCE: spec.name})),
    )
    out: dict[str, str] = {}
    for pod in pods:
        for status in (pod.status.initContainerStatuses or []) if pod.status else []:
            done = status.state.terminated if status.state else None
            if status.name == SEED_CONTAINER and done is not None and pod.metadata and pod.metadata.name:
                out[pod.metadata.name] = done.message or ""
    return out
