"""Reading StorageClasses: provisioner, parameters and berth's tier annotation."""

from __future__ import annotations

from berth.contract import ANNOTATION_TIER
from berth.lint.context import Context
from berth.lint.model import Document
from berth.lint.rules._pod import as_dict
from berth.providers import limits

STORAGE_CLASS = frozenset({"StorageClass"})


def provisioner(doc: Document) -> str:
    return str(doc.obj.get("provisioner", ""))


def parameters(doc: Document) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(doc.obj.get("parameters")).items()}


def tier(doc: Document) -> limits.Tier | None:
    """The class's tier: berth's annotation when present, else guessed from the media."""
    annotated = str(doc.annotations.get(ANNOTATION_TIER, ""))
    if annotated in set(limits.Tier):
        return limits.Tier(annotated)
    return limits.infer_tier(provisioner(doc), parameters(doc))


def class_of_claim(claim_spec: dict[str, object], ctx: Context) -> Document | None:
    """The StorageClass a claim spec uses (named, or the input's default class)."""
    name = claim_spec.get("storageClassName")
    if name is None:
        return ctx.default_storage_class()
    return ctx.storage_class(str(name)) if name else None
