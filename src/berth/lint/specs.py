"""berth specs as lint input: validate the spec, render it, lint what would be applied.

A spec document is validated by the spec loader itself, from the node tree the lint loader
composed (so positions are those of the linted file, whatever documents precede the spec),
or from the object alone when there is no text (``lint_objects``). Findings in rendered
objects point into the rendered stream, named ``<spec> (rendered)``; ``berth render <spec>``
prints the same stream, so the line numbers match it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from berth.lint.loader import LoadedFile, load_file, load_text
from berth.lint.model import Document, Finding, Severity
from berth.spec.errors import SpecError, SpecIssue
from berth.spec.identify import names_a_spec

RENDERED_SUFFIX = " (rendered)"


def is_spec(doc: Document) -> bool:
    """A berth spec, or a document that means to be one (a typo in its apiVersion is a spec error)."""
    api_version, kind = doc.obj.get("apiVersion"), doc.obj.get("kind")
    if isinstance(api_version, str | None) and isinstance(kind, str | None):
        return _names_a_spec(api_version, kind)
    return names_a_spec(api_version, kind)


# The near-miss test is a fuzzy match (difflib); a large stream repeats a few apiVersion/kind pairs.
_names_a_spec = functools.lru_cache(maxsize=4096)(names_a_spec)


@dataclass(frozen=True)
class RenderedSpec:
    """A spec's rendered stream (None if the spec is invalid), its problems, and the classes it says exist.

    A class declared ``existing: true`` is not rendered (the cluster has it), so the cross-object
    rules learn of it from here rather than calling claims on it unknown.
    """

    source: LoadedFile | None
    problems: list[Finding]
    existing_classes: frozenset[str] = frozenset()


def render_specs(loaded: LoadedFile) -> list[RenderedSpec]:
    """Each spec's rendered stream or its problems; more than one spec in a file is one problem, as for render."""
    specs = [d for d in loaded.documents if is_spec(d)]
    if len(specs) > 1:
        from berth.spec.load import one_spec_per_file

        issue = one_spec_per_file(len(specs))
        line, col = loaded.locate(specs[1].ref, ())
        return [
            RenderedSpec(
                None, [_finding(loaded, specs[1], SpecIssue(issue.path, issue.message, issue.hint, line, col))]
            )
        ]
    return [render_spec(loaded, doc) for doc in specs]


def render_spec(loaded: LoadedFile, doc: Document) -> RenderedSpec:
    """The rendered stream of a spec document, or the spec's problems as findings."""
    from berth.render import render_all
    from berth.render.output import to_stream
    from berth.spec.load import spec_from_data, spec_from_node

    locator = loaded.locator(doc.ref)
    try:
        if locator is not None:
            spec = spec_from_node(locator.root, loaded.name)
        else:
            spec = spec_from_data(doc.obj, loaded.name)
    except SpecError as err:
        return RenderedSpec(None, [_finding(loaded, doc, issue) for issue in err.issues])
    existing = frozenset(name for name, sc in spec.spec.storage_classes.items() if sc.existing)
    return RenderedSpec(load_text(loaded.name + RENDERED_SUFFIX, to_stream(render_all(spec))), [], existing)


def _finding(loaded: LoadedFile, doc: Document, issue: SpecIssue) -> Finding:
    return Finding(
        rule="spec-invalid",
        severity=Severity.ERROR,
        message=f"{issue.dotted}: {issue.message}",
        file=loaded.name,
        line=issue.line or 0,
        column=issue.column or 0,
        path=issue.path,
        fix=issue.hint,
        api_version=doc.api_version,
        kind=doc.kind,
        name=doc.name,
        namespace=doc.namespace,
        source_line=loaded.source_line(issue.line or 0),
    )


def reload(name: str) -> LoadedFile:
    """A source by name again (a worker, for cross-object findings): files or rendered specs."""
    if not name.endswith(RENDERED_SUFFIX):
        return load_file(name)
    for rendered in render_specs(load_file(name[: -len(RENDERED_SUFFIX)])):
        if rendered.source is not None:
            return rendered.source
    return LoadedFile(name=name)
