"""Volumes that grow: a bigger ``size`` in the spec reaches every existing claim and the StatefulSet.

Kubernetes cannot change a StatefulSet's ``volumeClaimTemplates`` (KEP-661), so a size change is
done the way an operator does it by hand, in this order:

1. refuse a shrink (a claim never shrinks) and a class that does not allow expansion, each as a
   located error on the spec's ``size`` field (exit 2), before anything is written;
2. patch ``spec.resources.requests.storage`` of each existing claim made from the template;
3. delete the StatefulSet with ``propagationPolicy: Orphan`` (``kubectl delete --cascade=orphan``):
   its pods and claims stay, only the controller object goes;
4. apply the StatefulSet rendered from the spec, with the new template: the controller adopts the
   running pods (same selector) and new replicas get claims of the new size.

Nothing is written without ``yes`` (dry run by default). Per claim, the report says what the
resizer did so far (``FileSystemResizePending``, a failure condition, or the new capacity).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError
from berth.quantity import parse_quantity
from berth.spec.errors import SpecError, SpecIssue

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.spec.model import TrainingCluster

Progress = Callable[[str], None]


@dataclass
class ClaimResize:
    """One existing claim of a growing template and what happens to it."""

    name: str
    template: str
    before: str | None
    after: str
    capacity: str | None = None
    patched: bool = False
    conditions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return {
            "name": self.name,
            "template": self.template,
            "before": self.before,
            "after": self.after,
            "capacity": self.capacity,
            "patched": self.patched,
            "conditions": self.conditions,
        }


@dataclass
class ResizeResult:
    """The plan (dry run) or what was done."""

    name: str
    namespace: str
    dry_run: bool
    templates: dict[str, tuple[str, str]]  # template -> (live size, spec size), growing ones only
    claims: list[ClaimResize]
    recreated: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        """Whether the spec asks for any growth."""
        return bool(self.templates) or any(c.before != c.after for c in self.claims)

    def to_json(self) -> dict[str, Any]:
        """For ``-o json`` (camelCase)."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "dryRun": self.dry_run,
            "templates": [{"name": t, "before": b, "after": a} for t, (b, a) in self.templates.items()],
            "claims": [c.to_json() for c in self.claims],
            "statefulSetRecreated": self.recreated,
            "notes": self.notes,
        }


def located(filename: str | None, path: tuple[str | int, ...], message: str, hint: str) -> SpecError:
    """A spec error at ``path`` of ``filename`` (line and column when the file can be read again)."""
    line = column = None
    if filename and filename != "-":
        from berth.yamlsource import NodeLocator, YamlError, compose_all

        try:
            roots = [r for r in compose_all(Path(filename).read_text(encoding="utf-8")) if r is not None]
            if roots:
                line, column = NodeLocator(roots[0])(path)
        except (OSError, UnicodeDecodeError, YamlError):
            pass
    return SpecError(filename or "<spec>", [SpecIssue(path, message, hint, line, column)])


def _size(value: str | None) -> Decimal:
    return parse_quantity(value) if value else Decimal(0)


def _template_sizes(sts: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tpl in sts.get("spec", {}).get("volumeClaimTemplates") or []:
        storage = (tpl.get("spec", {}).get("resources", {}).get("requests") or {}).get("storage")
        if storage:
            out[tpl["metadata"]["name"]] = storage
    return out


def _class_allows_expansion(kube: Kube, name: str) -> bool | None:
    """``allowVolumeExpansion`` of class ``name``; None when the class does not exist."""
    from lightkube.resources.storage_v1 import StorageClass

    found = kube.get_or_none(StorageClass, name)
    return None if found is None else bool(found.allowVolumeExpansion)


def _conditions(pvc: Any) -> list[str]:
    st = pvc.status
    return [f"{c.type}{': ' + c.message if c.message else ''}" for c in (st.conditions or [])] if st else []


def plan_resize(kube: Kube, spec: TrainingCluster, *, filename: str | None = None) -> ResizeResult:
    """What a resize would do; raises a located SpecError for a shrink or a class that cannot expand."""
    from lightkube.resources.apps_v1 import StatefulSet

    from berth.kube.status import collect

    result = ResizeResult(spec.name, spec.namespace, True, {}, [])
    found = kube.get_or_none(StatefulSet, spec.name, spec.namespace)
    if found is None:
        result.notes.append("no StatefulSet yet: `berth up` creates the claims at the spec's sizes")
        return result
    live = _template_sizes(dict(found.to_dict()))
    state = collect(kube, spec.name, spec.namespace, nodes=False, all_pods=True, require=False)
    for name, vol in spec.spec.volumes.items():
        where: tuple[str | int, ...] = ("spec", "volumes", name, "size")
        want = _size(vol.size)
        claims = [c for c in state.claims if c.template == name and not c.deleting]
        biggest = max([_size(live.get(name))] + [_size(c.requested) for c in claims])
        if want < biggest:
            have = next(
                (c.requested for c in claims if _size(c.requested) == biggest),
                live.get(name),
            )
            raise located(
                filename,
                where,
                f"cannot shrink volume {name!r} from {have} to {vol.size}: Kubernetes never shrinks a claim",
                f"keep size: {have} or more (to start smaller, back up the data and recreate the claims)",
            )
        growing = [c for c in claims if _size(c.requested) < want]
        if (name in live and _size(live[name]) < want) or growing:
            allowed = _class_allows_expansion(kube, vol.storage_class)
            if not allowed:
                why = (
                    f"StorageClass {vol.storage_class!r} does not exist"
                    if allowed is None
                    else f"StorageClass {vol.storage_class!r} does not allow volume expansion"
                )
                raise located(
                    filename,
                    where,
                    f"cannot grow volume {name!r} to {vol.size}: {why}",
                    "set allowVolumeExpansion: true on the class (spec.storageClasses."
                    f"{vol.storage_class}.allowVolumeExpansion for a class berth creates), or keep the old size",
                )
            if name in live and _size(live[name]) < want:
                result.templates[name] = (live[name], vol.size)
        for c in growing:
            result.claims.append(ClaimResize(c.name, name, c.requested, vol.size, capacity=c.capacity))
    for sv_name in spec.spec.volumes:
        if sv_name not in live:
            result.notes.append(f"volume {sv_name!r} is new: only `berth up` after a recreate adds a template")
    return result


def resize(
    kube: Kube,
    spec: TrainingCluster,
    *,
    yes: bool,
    filename: str | None = None,
    progress: Progress | None = None,
    timeout_s: float = 60,
) -> ResizeResult:
    """Plan, then (``yes``) patch each claim, recreate the StatefulSet with orphaned pods, verify.

    Refused (exit 3) when a TrainingCluster manages the cluster: the operator owns its StatefulSet.
    """
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    from berth.kube.preflight import refuse_operator_managed

    refuse_operator_managed(kube, spec.name, spec.namespace, "resize")
    result = plan_resize(kube, spec, filename=filename)
    if not yes or not result.changes:
        return result
    result.dry_run = False
    say = progress or (lambda _line: None)
    for claim in result.claims:
        body = {"spec": {"resources": {"requests": {"storage": claim.after}}}}
        say(f"patching claim {claim.name}: {claim.before} → {claim.after}")
        kube.call(
            f"patch PersistentVolumeClaim {spec.namespace}/{claim.name}",
            lambda c=claim, b=body: kube.client.patch(  # type: ignore[misc]
                PersistentVolumeClaim, c.name, b, namespace=spec.namespace
            ),
        )
        claim.patched = True
    if result.templates:
        _recreate(kube, spec, say, timeout_s)
        result.recreated = True
    for claim in result.claims:
        pvc: Any = kube.get_or_none(PersistentVolumeClaim, claim.name, spec.namespace)
        if pvc is not None:
            claim.capacity = (pvc.status.capacity or {}).get("storage") if pvc.status else None
            claim.conditions = _conditions(pvc)
            if _size(claim.capacity) < _size(claim.after) and not claim.conditions:
                claim.conditions = ["waiting for the resizer (no condition yet)"]
    return result


def _recreate(kube: Kube, spec: TrainingCluster, say: Progress, timeout_s: float) -> None:
    """Delete the StatefulSet orphaning its pods, wait until it is gone, apply the new one."""
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.types import CascadeType

    from berth.kube.apply import apply_objects, desired_objects

    sts = next(o for o in desired_objects(spec) if o["kind"] == "StatefulSet")
    say(f"deleting StatefulSet {spec.name} with --cascade=orphan (pods and claims stay)")
    kube.call(
        f"delete StatefulSet {spec.namespace}/{spec.name}",
        lambda: kube.client.delete(StatefulSet, spec.name, namespace=spec.namespace, cascade=CascadeType.ORPHAN),
    )
    deadline = time.monotonic() + timeout_s
    while kube.get_or_none(StatefulSet, spec.name, spec.namespace) is not None:
        if time.monotonic() > deadline:
            raise BerthError(
                f"StatefulSet {spec.namespace}/{spec.name} still exists {timeout_s:.0f}s after the orphan delete",
                "check its finalizers (`kubectl get sts -o yaml`), then run `berth resize` again",
            )
        time.sleep(0.2)
    say(f"applying StatefulSet {spec.name} with the new claim templates")
    apply_objects(kube, [sts])
