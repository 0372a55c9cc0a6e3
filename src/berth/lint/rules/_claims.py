"""Every claim spec of an object: a PVC's spec or a StatefulSet's claim templates."""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.model import Document, Obj, Path
from berth.lint.rules._pod import as_dict, claim_templates


def claim_specs(doc: Document) -> Iterator[tuple[str, Obj, Obj, Path]]:
    """(claim name, metadata, spec, spec path) for a PVC or each template of a StatefulSet."""
    if doc.kind == "PersistentVolumeClaim":
        yield doc.name, dict(doc.metadata), as_dict(doc.obj.get("spec")), ("spec",)
        return
    for vct, path in claim_templates(doc):
        meta = as_dict(vct.get("metadata"))
        yield str(meta.get("name", "")), meta, as_dict(vct.get("spec")), (*path, "spec")


CLAIM_KINDS = frozenset({"PersistentVolumeClaim", "StatefulSet"})
