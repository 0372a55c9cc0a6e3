"""PodDisruptionBudgets and the workloads they cover."""

from __future__ import annotations

from berth.lint.context import Context
from berth.lint.model import Document
from berth.lint.rules._pod import as_dict, pod_labels, selector_matches


def covered_workloads(pdb: Document, ctx: Context) -> list[Document]:
    """Workloads in the input whose pods the PDB selects."""
    selector = as_dict(pdb.obj.get("spec")).get("selector")
    if not isinstance(selector, dict) or not selector:
        return []
    return [w for w in ctx.workloads(pdb.namespace) if selector_matches(selector, pod_labels(w))]


def pdbs_covering(workload: Document, ctx: Context) -> list[Document]:
    """PDBs in the input that select a workload's pods."""
    labels = pod_labels(workload)
    return [
        p
        for p in ctx.of_kind("PodDisruptionBudget", workload.namespace)
        if isinstance(sel := as_dict(p.obj.get("spec")).get("selector"), dict) and sel and selector_matches(sel, labels)
    ]
