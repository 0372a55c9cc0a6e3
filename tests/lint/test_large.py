"""Large inputs lint in time linear in their size: the cyclic garbage collector is paused, and nothing needs it.

With the collector on, every full collection walked the node trees of all documents read so far,
so a 4 MiB file took about 2.5x the CPU per MiB of a 1 MiB one (benchmarks/lint_throughput.py
--large measures it; docs/benchmarks.md has the numbers).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from berth.lint import loader
from berth.lint.engine import LintOptions, lint_paths

OPTIONS = LintOptions(jobs=1)
DOC = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{i}, namespace: team-{team}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web-{i}}}}}
  template:
    metadata: {{labels: {{app: web-{i}}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolice: Always
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-{i}, namespace: team-{team}}}
spec: {{selector: {{app: web-{i}}}, ports: [{{port: 80}}]}}
"""


def _stream(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "stream.yaml"
    path.write_text("---\n".join(DOC.format(i=i, team=i % 7) for i in range(count)))
    return path


def test_files_are_read_and_linted_with_the_collector_paused_and_it_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stream(tmp_path, 400)
    enabled_while_reading: list[bool] = []
    read = loader.load_text

    def load_text(
        name: str, text: str, each: loader.OnDocument | None = None, *, regular: bool = False
    ) -> loader.LoadedFile:
        enabled_while_reading.append(gc.isenabled())
        return read(name, text, each, regular=regular)

    monkeypatch.setattr(loader, "load_text", load_text)
    full: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    gc.callbacks.append(count)
    try:
        result = lint_paths([str(path)], OPTIONS)
    finally:
        gc.callbacks.remove(count)
    assert result.resources == 800
    assert sum(f.rule == "schema-invalid" for f in result.findings) == 400  # every document was linted
    assert enabled_while_reading == [False] and full == []
    assert gc.isenabled()
    gc.disable()
    try:
        lint_paths([str(path)], OPTIONS)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_linting_leaves_no_reference_cycles_behind(tmp_path: Path) -> None:
    """Pausing the collector is only safe because reference counting frees everything lint builds."""
    path = _stream(tmp_path, 400)
    lint_paths([str(path)], OPTIONS)  # first-time imports and caches
    gc.collect()
    gc.disable()
    try:
        result = lint_paths([str(path)], OPTIONS)
        del result
        left = gc.collect()
    finally:
        gc.enable()
    assert left < 50, f"{left} objects in reference cycles after linting 800 resources"


def test_schema_only_memory_stays_well_under_the_node_trees_of_the_whole_file(tmp_path: Path) -> None:
    """Each document is linted as it is composed and its node tree dropped: peak RSS is not ~70x the file.

    Holding every tree (as before) cost about 60x the file above the interpreter's own size; now
    the text, the objects and the findings remain (about 20x).
    """
    from .test_hostile import _berth

    path = _stream(tmp_path, 3400)  # about 2 MiB, 6,800 resources
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    _, _, base = _berth("--schema-only", "-f", "json", str(tiny))
    result, _, peak = _berth("--schema-only", "-f", "json", str(path))
    assert result.returncode == 1 and result.stdout.count('"schema-invalid"') == 3400
    mib = path.stat().st_size / 2**20
    assert (peak - base) / mib < 35, f"{peak - base:.0f} MiB above start-up for a {mib:.1f} MiB file"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_findings_in_dropped_trees_are_placed_where_the_whole_tree_would_place_them(
    tmp_path: Path, newline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cross-object finding points into a document whose tree was dropped: it is composed again from its lines."""
    from berth.lint.loader import load_file

    docs = [
        "# ünïcödé before ✓\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 'ö ✓'}\n",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: p}\n"
        "spec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: nothing-here}\n",
        "--- # trailing\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: q}\n"
        "spec: {minAvailable: 1, selector: {matchLabels: {app: none}}}\n",
    ]
    path = tmp_path / "app.yaml"
    path.write_bytes(("---\n".join(docs[:2]) + docs[2]).replace("\n", newline).encode())
    monkeypatch.setattr(loader, "KEEP_TREES_BELOW", 0)  # as for a file of over 1 MiB
    found = [f for f in lint_paths([str(path)], OPTIONS).findings if f.rule == "pdb-selector-matches-nothing"]
    assert len(found) == 2
    whole = load_file(str(path))  # every tree kept: the reference positions
    for finding, doc in zip(found, whole.documents[1:], strict=True):
        assert (finding.line, finding.column) == whole.locate(doc.ref, finding.path) != (0, 0)
