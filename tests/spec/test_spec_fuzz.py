"""Any edit of a good spec either loads and renders, or fails as a located SpecError: never a crash."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.render import render_all
from berth.spec.errors import SpecError
from berth.spec.load import parse_spec

from .spec_helpers import DATA

BASE = yaml.safe_load((DATA / "issue2-example.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "100GB",
            "1Ti",
            "0",
            "-1",
            "ReadWriteOnce",
            "s3://b/x",
            "/a",
            "a:b",
            "yes",
            "on",
            "1e3",
            "∞",
            "@daily",
            "0 0 * * *",
        ]
    ),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=8), scalars, max_size=3))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


PATHS = _paths(BASE)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    doc = yaml.safe_load((DATA / "issue2-example.yaml").read_text())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
            else:
                parent[path[-1]] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this branch
    return yaml.safe_dump(doc, allow_unicode=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_no_edit_crashes_the_loader_or_the_renderer(text: str) -> None:
    try:
        spec = parse_spec(text, "fuzz.yaml")
    except SpecError as err:
        assert err.exit_code == 2
        for issue in err.issues:
            assert issue.line is not None and issue.line >= 1
            assert issue.message and "\n" not in issue.message
        return
    objects = render_all(spec)
    assert any(o["kind"] == "StatefulSet" for o in objects)
