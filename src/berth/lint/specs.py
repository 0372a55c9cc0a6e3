"""berth specs as lint input: validate the spec, render it, lint what would be applied.

Findings in rendered objects point into the rendered stream, named ``<spec> (rendered)``;
``berth render <spec>`` prints the same stream, so the line numbers match it.
"""

from __future__ import annotations

from berth.lint.loader import LoadedFile, load_file, load_text
from berth.lint.model import Document, Finding, Severity

SPEC_API_VERSION = "berth.dev/v1alpha1"
SPEC_KIND = "TrainingCluster"
RENDERED_SUFFIX = " (rendered)"


def is_spec(doc: Document) -> bool:
    return doc.api_version == SPEC_API_VERSION and doc.kind == SPEC_KIND


def render_spec(loaded: LoadedFile, doc: Document) -> tuple[LoadedFile | None, list[Finding]]:
    """The rendered stream of a spec document, or the spec's problems as findings."""
    from berth.render import render_all
    from berth.render.output import to_stream, to_yaml
    from berth.spec.errors import SpecError
    from berth.spec.load import parse_spec

    text = loaded.text if len(loaded.roots) == 1 else to_yaml(doc.obj)
    try:
        spec = parse_spec(text, loaded.name)
    except SpecError as err:
        return None, [
            Finding(
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
            for issue in err.issues
        ]
    return load_text(loaded.name + RENDERED_SUFFIX, to_stream(render_all(spec))), []


def reload(name: str) -> LoadedFile:
    """A source by name again (parent process, for cross-object findings): files or rendered specs."""
    if not name.endswith(RENDERED_SUFFIX):
        return load_file(name)
    spec_file = load_file(name[: -len(RENDERED_SUFFIX)])
    for doc in spec_file.documents:
        if is_spec(doc):
            rendered, _ = render_spec(spec_file, doc)
            if rendered is not None:
                return rendered
    return LoadedFile(name=name)
