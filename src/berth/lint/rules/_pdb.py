"""PodDisruptionBudgets and the workloads they cover."""

from __future__ import annotations

from berth.lint.context import Context
from berth.lint.model import Document
from berth.lint.rules._pod import as_dict

PDB = frozenset({"PodDisruptionBudget"})


def covered_workloads(pdb: Document, ctx: Context) -> list[Document]:
    """Workloads in the input whose pods the PDB selects."""
    selector = as_dict(pdb.obj.get("spec")).get("selector")
    if not isinstance(selector, dict) or not selector:
        return []
    return ctx.workloads_selected(selector, pdb.namespace)
