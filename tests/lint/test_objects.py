"""``lint_objects``: objects already in memory are linted like the same objects in a file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from berth.lint import LintOptions, lint_objects, lint_paths

OPTIONS = LintOptions(jobs=1)


def _objects() -> list[dict[str, Any]]:
    labels = {"app": "train"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "train", "namespace": "ml"},
            "spec": {
                "replicas": 2,
                "serviceName": "train",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "t", "image": "trainer:latest"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ml"}}],
        },
    ]


def _key(result: Any) -> list[tuple[str, str, str, tuple[str | int, ...], str]]:
    return sorted((f.rule, f.kind, f.name, f.path, f.message) for f in result.findings)


def test_objects_lint_like_the_same_objects_in_a_file(tmp_path: Path) -> None:
    objects = _objects()
    before = copy.deepcopy(objects)
    in_memory = lint_objects(objects, OPTIONS)
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    on_disk = lint_paths([str(path)], OPTIONS)
    assert _key(in_memory) == _key(on_disk)
    rules = {f.rule for f in in_memory.findings}
    assert {"image-latest-tag", "statefulset-headless-service"} <= rules  # single-object and cross-object rules
    assert (in_memory.files, in_memory.resources) == (1, 2)
    assert objects == before, "the caller's objects are not changed"


def test_objects_have_no_file_and_no_positions() -> None:
    result = lint_objects(_objects(), OPTIONS, name="<plan>")
    assert result.file_names == ["<plan>"]
    assert {(f.file, f.line, f.column) for f in result.findings} == {("<plan>", 0, 0)}


def test_an_object_that_is_not_a_mapping_is_a_finding() -> None:
    result = lint_objects([["not", "an", "object"]], OPTIONS)  # type: ignore[list-item]
    assert [(f.rule, f.line) for f in result.findings] == [("invalid-document", 0)]
