"""``berth plan``: what ``berth up`` would do, asked of the server itself, writing nothing.

Every object goes through a server-side dry-run apply, so admission, defaulting,
immutable-field checks and field-manager conflicts are the real ones; the result is
compared with the live object field by field. The rendered stack is linted first when
the linter is available, so one command shows both kinds of problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.kube.apply import ObjectResult, apply_objects, desired_objects
from berth.kube.preflight import Clash, Refused, clash_error, operator_refusal, preflight

if TYPE_CHECKING:
    from berth.kube.client import Kube
    from berth.spec.model import TrainingCluster


@dataclass
class Plan:
    """Per-object actions plus the linter's findings on the rendered objects."""

    name: str
    namespace: str
    results: list[ObjectResult]
    findings: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[Clash] = field(default_factory=list)
    refusal: Refused | None = None  # what `berth up` would stop with (a clash, or an operator-managed cluster)

    @property
    def changes(self) -> int:
        """Objects that ``up`` would create or update."""
        return sum(1 for r in self.results if r.action in ("create", "update"))

    def to_json(self) -> dict[str, Any]:
        """For ``-o json``."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "changes": self.changes,
            "objects": [r.to_json() for r in self.results],
            "lint": self.findings,
            "conflicts": [c.to_json() for c in self.conflicts],
            "upRefuses": None
            if self.refusal is None
            else {"message": self.refusal.message, "hint": self.refusal.hint, "exitCode": self.refusal.exit_code},
        }


def lint_findings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The linter's findings on the rendered stack (JSON records), linted in memory: no file is written."""
    from berth.lint import lint_objects

    return [f.to_json() for f in lint_objects(objects).findings]


def plan(kube: Kube, spec: TrainingCluster, *, lint: bool = True, force: bool = False) -> Plan:
    """Lint, then dry-run apply every object and diff it against the live one.

    Classes that clash with a live one are not dry-run (the server would only say Forbidden): they
    are listed as conflicts, and :attr:`Plan.refusal` carries the error ``berth up`` would stop
    with, as it does for a cluster the berth operator manages.
    """
    checked = preflight(kube, spec, desired_objects(spec))
    findings = lint_findings(checked.objects) if lint else []
    applied = apply_objects(kube, checked.to_apply(), dry_run=True, force=force)
    results = checked.in_order(applied + checked.shared + checked.clash_results())
    out = Plan(
        spec.name,
        spec.namespace,
        results + leftovers(kube, spec.name, spec.namespace, checked.objects),
        findings,
        checked.clashes,
    )
    out.refusal = operator_refusal(kube, spec.name, spec.namespace, "up") or (
        clash_error(checked.clashes) if checked.clashes else None
    )
    return out


def leftover_objects(kube: Kube, name: str, namespace: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Live objects labelled as this cluster's that the spec no longer renders.

    Per-replica claims are not leftovers: the StatefulSet controller made them (``status``/``gc`` cover them).
    """
    from berth.kube.claims import parse_claim_name
    from berth.kube.down import labelled

    wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
    templates = [
        t["metadata"]["name"]
        for o in objects
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates") or []
    ]
    return [
        obj
        for obj in labelled(kube, name, namespace, {})
        if (obj["kind"], obj["metadata"]["name"]) not in wanted
        and not (obj["kind"] == "PersistentVolumeClaim" and parse_claim_name(obj["metadata"]["name"], name, templates))
    ]


def leftovers(kube: Kube, name: str, namespace: str, objects: list[dict[str, Any]]) -> list[ObjectResult]:
    """Leftovers as plan results: ``berth up --prune`` deletes them (volumes excepted), ``berth down`` too."""
    return [
        ObjectResult(
            o["kind"],
            o["metadata"]["name"],
            namespace,
            "leftover",
            note="no longer in the spec: `berth up --prune` or `berth down` removes it",
        )
        for o in leftover_objects(kube, name, namespace, objects)
    ]
