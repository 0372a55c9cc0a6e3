"""Remove what ``berth up`` created, in reverse order; volumes stay unless explicitly asked.

The object list comes from the spec stored on the StatefulSet (exactly what ``up``
applied, cluster-scoped and CRD-served objects included) plus every namespaced object
still carrying this cluster's ``instance`` and ``managed-by: berth`` labels: what an older
spec created, or everything when the StatefulSet is already gone (an interrupted
``down``). The namespace and StorageClasses are shared with other workloads and always
kept; claims with ``berth.dev/protect: "true"`` are kept even with ``--delete-volumes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from berth.kube.apply import desired_objects, stored_spec
from berth.kube.client import model_for
from berth.kube.status import PROTECT_ANNOTATION, collect

if TYPE_CHECKING:
    from lightkube.core.resource import Resource

    from berth.kube.client import Kube

# Namespaced kinds berth renders, for the label fallback (CRD kinds are only found through the stored spec).
_LABELLED = (("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "PersistentVolumeClaim"),
             ("apps/v1", "StatefulSet"), ("policy/v1", "PodDisruptionBudget"),
             ("networking.k8s.io/v1", "NetworkPolicy"))
_SHARED_KINDS = {"Namespace": "other workloads may live in it; `kubectl delete namespace` removes it and its volumes",
                 "StorageClass": "cluster-wide: other claims may use it"}


@dataclass
class Removal:
    """One object and what ``down`` does with it."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    delete: bool
    reason: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return asdict(self)


def _volume_kind(kind: str) -> bool:
    return kind in ("PersistentVolumeClaim", "PersistentVolume")


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
        md = obj["metadata"]
        kind, obj_name, ns = obj["kind"], md["name"], md.get("namespace")
        keep = Removal(obj["apiVersion"], kind, obj_name, ns, False, "")
        if kind in _SHARED_KINDS:
            keep.reason = _SHARED_KINDS[kind]
        elif _volume_kind(kind) and not delete_volumes:
            keep.reason = "volume: kept unless --delete-volumes"
        elif (md.get("annotations") or {}).get(PROTECT_ANNOTATION) == "true":
            keep.reason = f'protected ({PROTECT_ANNOTATION}: "true")'
        else:
            keep.delete, keep.reason = True, "created by berth up"
        out.append(keep)
    for claim in state.claims:
        item = Removal("v1", "PersistentVolumeClaim", claim.name, namespace, False,
                       "volume: kept unless --delete-volumes (reused by `berth up` later)")
        if claim.protected:
            item.reason = f'protected ({PROTECT_ANNOTATION}: "true")'
        elif delete_volumes:
            item.delete, item.reason = True, f"per-replica volume of {claim.template} (ordinal {claim.ordinal})"
        out.append(item)
    return out


def labelled(kube: Kube, name: str, namespace: str,
              cache: dict[tuple[str, str], type[Resource] | None]) -> list[dict[str, Any]]:
    """Namespaced objects labelled as this cluster's and berth's, in apply order."""
    labels: dict[str, Any] = {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": "berth"}
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


def delete_marked(kube: Kube, removals: list[Removal]) -> None:
    """Delete every removal marked ``delete`` (already gone is fine); mark each ``deleted``."""
    cache: dict[tuple[str, str], type[Resource] | None] = {}
    for item in removals:
        if not item.delete:
            continue
        model = model_for(kube, {"apiVersion": item.api_version, "kind": item.kind}, cache)
        if model is None:
            continue
        kube.delete(model, item.name, item.namespace)
        item.deleted = True

