"""Remove what ``berth up`` created, in reverse order; volumes stay unless explicitly asked.

The object list comes from the spec stored on the StatefulSet (exactly what ``up``
applied, cluster-scoped and CRD-served objects included) plus every namespaced object
still carrying this cluster's ``instance`` and ``managed-by: berth`` labels: what an older
spec created, or everything when the StatefulSet is already gone (an interrupted
``down``). The namespace and StorageClasses are shared with other workloads and always
kept; claims with ``berth.dev/protect: "true"`` are kept even with ``--delete-volumes``; a
cluster-scoped class another cluster owns (``berth.dev/owner``: ``up`` used it as it was) is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.contract import LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY
from berth.kube.apply import desired_objects, stored_spec
from berth.kube.client import model_for
from berth.kube.deletion import Removal, delete_marked, keep_reason, removal
from berth.kube.preflight import foreign_owner
from berth.kube.status import collect

if TYPE_CHECKING:
    from lightkube.core.resource import Resource

    from berth.kube.client import Kube

# Namespaced kinds berth renders, for the label fallback (CRD kinds are only found through the stored spec).
_LABELLED = (
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("batch/v1", "Job"),  # spec.datasets' populate Jobs (one per content hash: old ones are pruned)
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)


def plan_down(kube: Kube, name: str, namespace: str, *, delete_volumes: bool) -> list[Removal]:
    """Everything that belongs to the cluster, in deletion order, with keep/delete and why."""
    state = collect(kube, name, namespace, nodes=False, require=False)
    spec = stored_spec(state.statefulset) if state.statefulset else None
    cache: dict[tuple[str, str], type[Resource] | None] = {}
    objects = desired_objects(spec) if spec else []
    known = {(o["kind"], o["metadata"]["name"]) for o in objects}
    # Labelled leftovers: everything when the StatefulSet is gone, else what an older spec created.
    objects += [o for o in labelled(kube, name, namespace, cache) if (o["kind"], o["metadata"]["name"]) not in known]
    out: list[Removal] = []
    per_replica = {c.name for c in state.claims}
    for obj in reversed(objects):
        if obj["kind"] == "PersistentVolumeClaim" and obj["metadata"]["name"] in per_replica:
            continue  # listed below with its template and ordinal
        if model_for(kube, obj, cache) is None:
            continue  # its CRD is not served: `up` skipped it, there is nothing to remove
        item = removal(
            obj,
            volumes_kept=None if delete_volumes else "volume: kept unless --delete-volumes",
            because="created by berth up",
        )
        owner = foreign_owner(kube, obj, name, namespace, cache) if item.delete and not item.namespace else None
        if owner is not None:
            item.delete, item.reason = False, f"cluster-wide, owned by {owner}: `berth up` used it as it is"
        out.append(item)
    for claim in state.claims:
        why = keep_reason(
            "PersistentVolumeClaim",
            protected=claim.protected,
            volumes_kept=None
            if delete_volumes
            else "volume: kept unless --delete-volumes (reused by `berth up` later)",
        )
        out.append(
            Removal(
                "v1",
                "PersistentVolumeClaim",
                claim.name,
                namespace,
                why is None,
                why or f"per-replica volume of {claim.template} (ordinal {claim.ordinal})",
            )
        )
    return out


def labelled(
    kube: Kube, name: str, namespace: str, cache: dict[tuple[str, str], type[Resource] | None]
) -> list[dict[str, Any]]:
    """Namespaced objects labelled as this cluster's and berth's, in apply order."""
    labels: dict[str, Any] = {LABEL_INSTANCE: name, LABEL_MANAGED_BY: MANAGED_BY}
    found: list[dict[str, Any]] = []
    for api_version, kind in _LABELLED:
        model = model_for(kube, {"apiVersion": api_version, "kind": kind}, cache)
        assert model is not None

        def listing(model: type[Resource] = model) -> list[dict[str, Any]]:
            items: Any = kube.client.list(model, namespace=namespace, labels=labels)
            return [dict(o.to_dict()) for o in items]

        for obj in kube.call(f"list {kind} in {namespace}", listing):
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", api_version)
            found.append(obj)
    return found


def down(kube: Kube, name: str, namespace: str, *, delete_volumes: bool, yes: bool) -> list[Removal]:
    """Plan the removal; carry it out only with ``yes``."""
    removals = plan_down(kube, name, namespace, delete_volumes=delete_volumes)
    if yes:
        delete_marked(kube, removals)
    return removals
