"""Server-side apply of the rendered stack, in dependency order, writing only what changes.

For an object that exists, berth first asks the server what applying would produce
(``dryRun=All``) and compares it with the live object: equal means nothing is sent, so a
second ``berth up`` writes nothing. Objects served by a CRD that is not installed
(ServiceMonitor, PrometheusRule, Velero Schedule, VolumeSnapshotClass) are skipped with a
note instead of failing the whole stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from berth.contract import ANNOTATION_SPEC, FIELD_MANAGER
from berth.errors import BerthError
from berth.kube.client import Kube, model_for, object_ref
from berth.kube.diff import changed_paths, project, value_at
from berth.kube.errors import Invalid, NamespaceMissing

if TYPE_CHECKING:
    from lightkube.core.resource import Resource

    from berth.spec.model import TrainingCluster

Action = Literal["create", "update", "unchanged", "skipped", "leftover", "pruned"]


@dataclass
class ObjectResult:
    """What applying one object did (or, in a plan, would do)."""

    kind: str
    name: str
    namespace: str | None
    action: Action
    changed: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def ref(self) -> str:
        """``StatefulSet ml/ml-training`` style reference for messages."""
        return object_ref(self.kind, self.name, self.namespace)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for ``-o json``."""
        return asdict(self)


class ApplyFailed(BerthError):
    """An apply stopped part-way: says what was applied so nobody mistakes it for success."""

    def __init__(
        self, cause: BerthError, done: list[ObjectResult], total: int, failed: str, *, dry_run: bool = False
    ) -> None:
        what = cause.message if cause.message.startswith(failed) else f"{failed}: {cause.message}"
        applied = [r.ref for r in done if r.action in ("create", "update")]
        if dry_run:
            outcome = f"plan stopped at object {len(done) + 1} of {total}; nothing was written"
        else:
            outcome = f"{len(done)} of {total} objects processed"
            if applied:
                outcome += f" ({len(applied)} written: {', '.join(applied)})"
            outcome += "; the stack is NOT complete"
        super().__init__(f"{what} — {outcome}", cause.hint or "fix the cause and rerun `berth up`: apply is idempotent")
        self.cause = cause
        self.done = done


def spec_document(spec: TrainingCluster) -> str:
    """The spec as compact JSON (defaults left out), stored on the StatefulSet.

    Key order is kept: the order of volumes is the order of volumeClaimTemplates (immutable)
    and picks the default checkpoint volume, so sorting would change the re-rendered template.
    """
    return json.dumps(spec.model_dump(mode="json", by_alias=True, exclude_defaults=True), separators=(",", ":"))


def desired_objects(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The rendered stack, the StatefulSet annotated with the spec it came from."""
    from berth.render import render_all

    objects = render_all(spec)
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            obj["metadata"].setdefault("annotations", {})[ANNOTATION_SPEC] = spec_document(spec)
    return objects


def stored_spec(statefulset: dict[str, Any]) -> TrainingCluster | None:
    """The spec ``berth up`` stored on a StatefulSet, None if berth did not create it."""
    from berth.spec.model import TrainingCluster

    raw = (statefulset.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SPEC)
    if not raw:
        return None
    try:
        return TrainingCluster.model_validate(json.loads(raw))
    except ValueError as err:
        raise BerthError(
            f"the {ANNOTATION_SPEC} annotation of StatefulSet "
            f"{statefulset['metadata'].get('name')} is not a valid spec: {err}",
            "run `berth up SPEC` again to rewrite it",
        ) from None


def _namespace_of(obj: dict[str, Any], model: type[Resource]) -> str | None:
    from lightkube.core.resource import NamespacedResource

    return obj["metadata"].get("namespace") if issubclass(model, NamespacedResource) else None


def _apply(
    kube: Kube,
    model: type[Resource],
    obj: dict[str, Any],
    namespace: str | None,
    *,
    dry_run: bool,
    force: bool,
    ref: str,
) -> dict[str, Any]:
    from lightkube.types import PatchType

    def send() -> dict[str, Any]:
        result: Any = kube.client.patch(  # type: ignore[type-var]
            model,
            obj["metadata"]["name"],
            obj,
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=force,
            dry_run=dry_run,
        )
        return dict(result.to_dict())

    return kube.call(f"{'dry-run ' if dry_run else ''}apply {ref}", send)


def apply_objects(
    kube: Kube,
    objects: list[dict[str, Any]],
    *,
    dry_run: bool = False,
    force: bool = False,
    on_result: Callable[[ObjectResult], None] | None = None,
) -> list[ObjectResult]:
    """Apply ``objects`` in order; in dry-run, only report. Raises ApplyFailed with the progress so far."""
    cache: dict[tuple[str, str], type[Resource] | None] = {}
    results: list[ObjectResult] = []
    planned_namespaces: set[str] = set()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        ref = object_ref(kind, name, obj["metadata"].get("namespace"))
        try:
            result = _apply_one(kube, obj, cache, dry_run=dry_run, force=force, planned_namespaces=planned_namespaces)
        except BerthError as err:
            raise ApplyFailed(err, results, len(objects), ref, dry_run=dry_run) from None
        if dry_run and kind == "Namespace" and result.action == "create":
            planned_namespaces.add(name)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def _apply_one(
    kube: Kube,
    obj: dict[str, Any],
    cache: dict[tuple[str, str], type[Resource] | None],
    *,
    dry_run: bool,
    force: bool,
    planned_namespaces: set[str],
) -> ObjectResult:
    kind, name = obj["kind"], obj["metadata"]["name"]
    model = model_for(kube, obj, cache)
    if model is None:
        return ObjectResult(
            kind,
            name,
            obj["metadata"].get("namespace"),
            "skipped",
            note=f"{obj['apiVersion']} {kind} is not served by this cluster (its CRD is not "
            "installed); install it and run `berth up` again",
        )
    namespace = _namespace_of(obj, model)
    ref = object_ref(kind, name, namespace)
    if namespace in planned_namespaces:
        # The namespace itself is only planned: the server cannot dry-run objects inside it yet.
        return ObjectResult(kind, name, namespace, "create", note=f"namespace {namespace} is created first")
    found: Any = kube.get_or_none(model, name, namespace)
    if found is None:
        try:
            _apply(kube, model, obj, namespace, dry_run=dry_run, force=force, ref=ref)
        except NamespaceMissing as err:
            raise NamespaceMissing(f"namespace {namespace} does not exist", err.hint) from None
        return ObjectResult(kind, name, namespace, "create")
    live: dict[str, Any] = dict(found.to_dict())
    try:
        candidate = _apply(kube, model, obj, namespace, dry_run=True, force=force, ref=ref)
    except Invalid as err:
        raise _explain_immutable(err, kind, ref, live, obj) from None
    changed = changed_paths(live, candidate)
    if not changed:
        return ObjectResult(kind, name, namespace, "unchanged")
    if not dry_run:
        _apply(kube, model, obj, namespace, dry_run=False, force=force, ref=ref)
    return ObjectResult(kind, name, namespace, "update", changed=changed)


# Fields of a StatefulSet's spec the API server lets an update change; anything else is immutable.
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
)


def _explain_immutable(err: Invalid, kind: str, ref: str, live: dict[str, Any], obj: dict[str, Any]) -> BerthError:
    """Name the immutable field that changed and how to proceed (the server only says 'forbidden')."""
    if kind != "StatefulSet":
        return err
    desired_spec = {k: v for k, v in obj.get("spec", {}).items() if k not in _STS_MUTABLE}
    live_spec = project(live.get("spec", {}), desired_spec)
    changed = changed_paths(live_spec, desired_spec, "spec")
    if not changed:
        return err
    shown = "; ".join(f"{p} ({value_at(live, p)!r} → {value_at(obj, p)!r})" for p in changed[:4])
    name = obj["metadata"]["name"]
    hint = (
        f"keep the old value, or recreate the StatefulSet without touching pods and claims: "
        f"`kubectl delete statefulset {name} --cascade=orphan -n {obj['metadata'].get('namespace')}` "
        "then `berth up` again"
    )
    if any(".resources.requests.storage" in p for p in changed):
        hint = (
            "to grow volumes, run `berth resize SPEC --yes`: it patches each claim and recreates the "
            "StatefulSet with --cascade=orphan (pods keep running)"
        )
    return Invalid(
        f"{ref}: {shown} cannot change in place: a StatefulSet's {changed[0].split('.')[1].split('[')[0]} is immutable",
        hint,
        changed,
    )
