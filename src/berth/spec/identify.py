"""Whether a document means to be a berth spec: the one test render, lint and the loader share.

Kept apart from ``spec.load`` so ``berth lint`` can sort documents without importing pydantic
and the spec model (about 0.2 s of its start-up), which it needs only once it meets a spec.
"""

from __future__ import annotations

import difflib

from berth.contract import API_GROUP, API_VERSION, KIND


def names_a_spec(api_version: object, kind: object) -> bool:
    """Whether a document means to be a spec: berth's apiVersion, its group, or a near miss of it.

    ``berth lint`` sends such documents to this loader, so ``berth.dev/v1alpa1`` is an error
    with a did-you-mean rather than a manifest of a kind no schema knows.
    """
    text = str(api_version or "")
    return (
        text.partition("/")[0] == API_GROUP
        or bool(difflib.get_close_matches(text, [API_VERSION], n=1, cutoff=0.8))
        or (kind == KIND and not text)
    )
