"""Which objects berth may delete, and the deleting: one policy for ``down``, ``up --prune`` and ``gc``.

An object berth created may be deleted unless one of three holds applies, checked in this
order (the first one is the reason given):

- **shared**: a Namespace or StorageClass serves other workloads too; berth never deletes one.
- **protected**: ``berth.dev/protect: "true"`` keeps an object whatever the command and its flags.
- **volume**: a claim or volume holds data; only a command asked to delete volumes may
  (``down --delete-volumes``, ``gc`` for orphaned claims). ``up --prune`` never does.

Each command adds its own questions before this one (``gc``: is the claim mounted? made from
this cluster's template?) and words the volume hold after its own flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.contract import ANNOTATION_PROTECT
from berth.kube.client import model_for

if TYPE_CHECKING:
    from lightkube.core.resource import Resource

    from berth.kube.client import Kube

VOLUME_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume"})
# Why each shared kind stays (said by `berth down`, which lists them).
SHARED_KINDS = {
    "Namespace": "other workloads may live in it; `kubectl delete namespace` removes it and its volumes",
    "StorageClass": "cluster-wide: other claims may use it",
}
PROTECTED = f'protected ({ANNOTATION_PROTECT}: "true")'


def is_protected(annotations: Mapping[str, str] | None) -> bool:
    """Whether an object's annotations carry ``berth.dev/protect: "true"``."""
    return (annotations or {}).get(ANNOTATION_PROTECT) == "true"


def keep_reason(kind: str, *, protected: bool, volumes_kept: str | None) -> str | None:
    """Why an object of ``kind`` must stay, or None when the command may delete it.

    ``volumes_kept``: None when the command was asked to delete claims and volumes; otherwise
    its own words for keeping them (which flag would delete them).
    """
    if kind in SHARED_KINDS:
        return SHARED_KINDS[kind]
    if protected:
        return PROTECTED
    if kind in VOLUME_KINDS and volumes_kept is not None:
        return volumes_kept
    return None


@dataclass
class Removal:
    """One object, whether the command deletes it, and why."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    delete: bool
    reason: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``-o json`` (camelCase keys, like the API's)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "delete": self.delete,
            "reason": self.reason,
            "deleted": self.deleted,
        }


def removal(obj: Mapping[str, Any], *, volumes_kept: str | None, because: str) -> Removal:
    """What the policy does with a rendered or listed object: kept with the reason, or deleted ``because``."""
    md = obj["metadata"]
    why = keep_reason(obj["kind"], protected=is_protected(md.get("annotations")), volumes_kept=volumes_kept)
    return Removal(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"), why is None, why or because)


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
