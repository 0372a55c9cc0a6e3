"""Checks before ``berth up`` writes anything: cluster-wide class names, and clusters the operator owns.

**Cluster-scoped classes.** StorageClasses and VolumeSnapshotClasses have one namespace: the whole
cluster. The same spec applied in two namespaces (or next to a class someone else made) names the
same ``StorageClass/fast-ssd``; server-side apply with the one field manager ``berth`` would
silently hand it to whoever applied last, or fail on the class's immutable fields with the
server's bare ``Forbidden``. So before applying, each rendered class is compared with the live
one and with who owns it (the ``berth.dev/owner`` annotation berth stamps on the classes it
creates, else berth's labels, else the field managers):

- no live class, or ours: applied as usual;
- another owner's class with exactly our settings: used as it is and not written (so the owner
  keeps it, its labels and its annotation);
- another owner's class with other settings, or our own class with a changed immutable setting
  (provisioner, parameters, reclaimPolicy, volumeBindingMode): a :class:`Clash`. ``plan`` shows
  it, ``up`` refuses with :class:`Refused` (exit 3) before writing anything.

**Operator-managed clusters.** A ``TrainingCluster`` of the same name in the namespace means the
berth operator reconciles the cluster: ``berth up``/``scale``/``down``/``resize`` from a laptop
would fight it (the operator sets its spec back on the next resync). The operator applies with the
same field manager and labels as the CLI (one apply path), so the custom resource itself is the
mark. ``kube.up.up`` and ``kube.down.down`` are also the operator's own apply and finalizer, so the
CLI asks :func:`refuse_operator_managed` before calling them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from berth.contract import (
    ANNOTATION_OWNER,
    API_VERSION,
    KIND,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)
from berth.errors import BerthError
from berth.kube.apply import ObjectResult, desired_objects
from berth.kube.client import model_for
from berth.kube.diff import changed_paths, value_at
from berth.kube.errors import Forbidden

if TYPE_CHECKING:
    from lightkube.core.resource import Resource

    from berth.kube.client import Kube
    from berth.spec.model import TrainingCluster

# Exit code of a command refused because of the cluster's state (docs/cli.md): nothing was written.
REFUSED_EXIT = 3

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"

# The settings of each cluster-scoped class kind berth renders, with the API server's defaults
# (a live class always has them filled in; a rendered one may leave them out).
_SETTINGS: dict[str, dict[str, Any]] = {
    "StorageClass": {
        "provisioner": None,
        "parameters": {},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": False,
        "mountOptions": [],
        "allowedTopologies": [],
    },
    "VolumeSnapshotClass": {"driver": None, "parameters": {}, "deletionPolicy": None},
}
# What the API server refuses to change on an existing StorageClass (ValidateStorageClassUpdate).
_IMMUTABLE = {"StorageClass": frozenset({"provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"})}


def cluster_of(spec: TrainingCluster) -> str:
    """``namespace/name``: the value of ``berth.dev/owner`` on the classes this cluster creates."""
    return f"{spec.namespace}/{spec.name}"


def stamp_owner(objects: list[dict[str, Any]], spec: TrainingCluster) -> list[dict[str, Any]]:
    """Mark each rendered cluster-scoped class with the cluster that creates it (in place; returns it)."""
    for obj in objects:
        if obj["kind"] in _SETTINGS:
            obj["metadata"].setdefault("annotations", {})[ANNOTATION_OWNER] = cluster_of(spec)
    return objects


def class_settings(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields that make a class what it is, server defaults filled in."""
    kind = obj["kind"]
    out = {key: default if obj.get(key) is None else obj[key] for key, default in _SETTINGS[kind].items()}
    if kind == "StorageClass":
        annotations = obj["metadata"].get("annotations") or {}
        out["metadata"] = {"annotations": {DEFAULT_CLASS: annotations.get(DEFAULT_CLASS, "false")}}
    return out


@dataclass(frozen=True)
class Owner:
    """Who holds a live class: a berth cluster (``ns/name``, or only ``name`` when an older berth made it)."""

    cluster: str | None
    managers: tuple[str, ...]
    exact: bool  # cluster came from berth.dev/owner, not from the instance label

    @classmethod
    def of(cls, live: dict[str, Any]) -> Owner:
        """Read the owner off a live object's annotation, labels and managedFields."""
        meta = live.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        managers = tuple(sorted({str(m["manager"]) for m in meta.get("managedFields") or [] if m.get("manager")}))
        if annotations.get(ANNOTATION_OWNER):
            return cls(str(annotations[ANNOTATION_OWNER]), managers, exact=True)
        if labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_INSTANCE):
            return cls(str(labels[LABEL_INSTANCE]), managers, exact=False)
        return cls(None, managers, exact=False)

    def is_cluster(self, name: str, namespace: str) -> bool:
        """Whether cluster ``namespace/name`` made it (an unstamped berth class: same instance name)."""
        return self.cluster == (f"{namespace}/{name}" if self.exact else name)

    def __str__(self) -> str:
        by = f"field manager{'s' if len(self.managers) > 1 else ''} {', '.join(self.managers)}"
        if not self.managers:
            by = "no field manager recorded"
        if self.cluster is None:
            return f"another owner ({by})"
        return (
            f"berth cluster {self.cluster} ({by})"
            if self.exact
            else f"berth cluster {self.cluster} (namespace not recorded; {by})"
        )


@dataclass
class Clash:
    """A class this spec renders that exists with other settings: applying would overwrite or fail."""

    kind: str
    name: str
    owner: Owner
    wanted_by: str
    fields: list[tuple[str, Any, Any]]  # (path, live value, rendered value)
    immutable: bool  # only our own class: an immutable setting changed

    @property
    def message(self) -> str:
        """One line naming the object, both owners and what differs."""
        shown = ", ".join(f"{p} {live!r} → {want!r}" for p, live, want in self.fields[:4])
        if len(self.fields) > 4:
            shown += f", … ({len(self.fields)} fields)"
        if self.immutable:
            return (
                f"{self.kind} {self.name} of {self.owner} cannot change in place: {shown}; "
                f"a {self.kind}'s {', '.join(sorted(_IMMUTABLE[self.kind]))} are immutable"
            )
        return (
            f"{self.kind} {self.name} belongs to {self.owner}, with settings other than {self.wanted_by} wants: {shown}"
        )

    @property
    def hint(self) -> str:
        """The ways out, in the spec's own words."""
        where = "spec.storageClasses" if self.kind == "StorageClass" else "spec.backup"
        if self.immutable:
            return (
                f"give the class a new name under {where} (and in each volume's storageClass; existing claims "
                f"keep the old class), or delete the class first (`kubectl delete {self.kind.lower()} {self.name}`: "
                "bound volumes keep working) and run `berth up` again"
            )
        if self.kind == "VolumeSnapshotClass":
            return "rename this cluster (the class is named <name>-snapshots), or turn off spec.backup.snapshotVolumes"
        return (
            f"give this cluster its own class name (e.g. {self.name}-{self.wanted_by.split('/')[0]} under "
            f"spec.storageClasses and in each volume's storageClass), or use the class as it is with "
            f"`{where}.{self.name}.existing: true`"
        )

    def to_json(self) -> dict[str, Any]:
        """For ``plan -o json``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "owner": str(self.owner),
            "ownerCluster": self.owner.cluster,
            "fieldManagers": list(self.owner.managers),
            "wantedBy": self.wanted_by,
            "immutable": self.immutable,
            "fields": [{"path": p, "live": live, "wanted": want} for p, live, want in self.fields],
            "message": self.message,
            "hint": self.hint,
        }


class Refused(BerthError):
    """The cluster's state forbids the command; nothing was written (exit 3)."""

    exit_code = REFUSED_EXIT


def clash_error(clashes: list[Clash]) -> Refused:
    """One message for every clash (the first one's hint: usually there is one)."""
    what = "; ".join(c.message for c in clashes)
    return Refused(f"{what} — nothing was written", clashes[0].hint)


@dataclass
class Preflight:
    """The rendered, owner-stamped stack and what the classes check decided."""

    objects: list[dict[str, Any]]
    shared: list[ObjectResult] = field(default_factory=list)  # another owner's class with our settings
    clashes: list[Clash] = field(default_factory=list)

    def to_apply(self) -> list[dict[str, Any]]:
        """The objects to apply: all but shared and clashing classes."""
        held = {(r.kind, r.name) for r in self.shared} | {(c.kind, c.name) for c in self.clashes}
        return [o for o in self.objects if (o["kind"], o["metadata"]["name"]) not in held]

    def clash_results(self) -> list[ObjectResult]:
        """Clashes as plan rows (not applied, not even dry-run: the server would only say Forbidden)."""
        return [
            ObjectResult(c.kind, c.name, None, "skipped", [p for p, _, _ in c.fields], note=f"CONFLICT: {c.message}")
            for c in self.clashes
        ]

    def in_order(self, results: list[ObjectResult]) -> list[ObjectResult]:
        """Results sorted into the stack's apply order (held classes were decided before applying)."""
        index = {(o["kind"], o["metadata"]["name"]): i for i, o in enumerate(self.objects)}
        return sorted(results, key=lambda r: index.get((r.kind, r.name), len(index)))


def preflight(kube: Kube, spec: TrainingCluster, objects: list[dict[str, Any]]) -> Preflight:
    """Stamp ``objects`` with this cluster as owner and compare each cluster-scoped class with the live one."""
    stamp_owner(objects, spec)
    out = Preflight(objects)
    cache: dict[tuple[str, str], type[Resource] | None] = {}
    for obj in objects:
        kind = obj["kind"]
        if kind not in _SETTINGS:
            continue
        model = model_for(kube, obj, cache)
        if model is None:
            continue  # its CRD is not served: apply skips it with a note
        name = obj["metadata"]["name"]
        found: Any = kube.get_or_none(model, name)
        if found is None:
            continue
        live: dict[str, Any] = dict(found.to_dict())
        owner = Owner.of(live)
        ours = owner.is_cluster(spec.name, spec.namespace)
        wanted, have = class_settings(obj), class_settings(live)
        paths = changed_paths(have, wanted)
        fields = [(p, value_at(have, p), value_at(wanted, p)) for p in paths]
        immutable = [f for f in fields if f[0].split(".")[0] in _IMMUTABLE.get(kind, ())]
        if ours and immutable:
            out.clashes.append(Clash(kind, name, owner, cluster_of(spec), immutable, immutable=True))
        elif not ours and fields:
            out.clashes.append(Clash(kind, name, owner, cluster_of(spec), fields, immutable=False))
        elif not ours:
            out.shared.append(
                ObjectResult(
                    kind,
                    name,
                    None,
                    "unchanged",
                    note=f"exists with the same settings and belongs to {owner}: used as it is, not written",
                )
            )
    return out


def foreign_owner(
    kube: Kube, obj: dict[str, Any], name: str, namespace: str, cache: dict[tuple[str, str], type[Resource] | None]
) -> Owner | None:
    """The owner of a live cluster-scoped class when it is not cluster ``namespace/name`` (``down`` keeps it)."""
    model = model_for(kube, obj, cache) if obj["kind"] in _SETTINGS else None
    found: Any = None if model is None else kube.get_or_none(model, obj["metadata"]["name"])
    if found is None:
        return None
    owner = Owner.of(dict(found.to_dict()))
    return None if owner.is_cluster(name, namespace) else owner


def checked_stack(kube: Kube, spec: TrainingCluster) -> Preflight:
    """The stack ``up`` and ``scale`` apply, after the classes check; raises :class:`Refused` on a clash."""
    checked = preflight(kube, spec, desired_objects(spec))
    if checked.clashes:
        raise clash_error(checked.clashes)
    return checked


def operator_owner(kube: Kube, name: str, namespace: str) -> dict[str, Any] | None:
    """The ``TrainingCluster`` that makes the berth operator manage this cluster, None when there is none.

    None too when the CRD is not installed, or when RBAC does not let the caller read
    TrainingClusters: such a caller is not stopped (it takes ``get`` on ``trainingclusters.berth.dev``).
    """
    model = model_for(kube, {"apiVersion": API_VERSION, "kind": KIND}, {})
    if model is None:
        return None
    try:
        found: Any = kube.get_or_none(model, name, namespace)
    except Forbidden:
        return None
    return None if found is None else dict(found.to_dict())


Command = Literal["up", "scale", "down", "resize"]

# What to do instead, per command, on an operator-managed cluster.
_INSTEAD: dict[Command, str] = {
    "up": "edit the TrainingCluster instead (`kubectl edit tc {name} -n {ns}`, or change its YAML where "
    "GitOps keeps it): the operator applies it",
    "scale": "scale the TrainingCluster instead: `kubectl scale tc/{name} -n {ns} --replicas N`",
    "down": "delete the TrainingCluster instead: `kubectl delete tc/{name} -n {ns}` (its finalizer removes the "
    "objects; claims are kept unless spec.volumeRetention.whenDeleted is Delete)",
    "resize": "change spec.volumes.<volume>.size in the TrainingCluster instead (`kubectl edit tc {name} -n {ns}`)",
}


def operator_refusal(kube: Kube, name: str, namespace: str, command: Command) -> Refused | None:
    """The error ``berth <command>`` stops with on an operator-managed cluster, None when it may go on."""
    body = operator_owner(kube, name, namespace)
    if body is None:
        return None
    ref = f"{KIND} {namespace}/{name}"
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return Refused(
            f"{ref} is being deleted: the berth operator is removing this cluster; `berth {command}` would fight it",
            f"wait until `kubectl get tc {name} -n {namespace}` says NotFound, then run `berth {command}` again",
        )
    return Refused(
        f"{ref} manages this cluster: the berth operator reconciles it, and `berth {command}` would fight it",
        _INSTEAD[command].format(name=name, ns=namespace),
    )


def refuse_operator_managed(kube: Kube, name: str, namespace: str, command: Command) -> None:
    """Raise :class:`Refused` when a TrainingCluster manages ``namespace/name`` (before ``command`` writes)."""
    refusal = operator_refusal(kube, name, namespace, command)
    if refusal is not None:
        raise refusal
