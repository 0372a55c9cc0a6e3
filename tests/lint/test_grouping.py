"""Cross-object rules join objects per application (directory by default), never across unrelated trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.lint.engine import LintOptions, lint_paths

from .conftest import FIXTURES

WORKLOAD = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis}
spec:
  serviceName: redis
  replicas: 2
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers: [{name: redis, image: "redis:7.2"}]
"""
PDB = """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: redis-pdb}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: redis}}
"""


def _tree(tmp_path: Path) -> Path:
    """Two unrelated repositories: one has a PDB, the other a workload its selector would match."""
    (tmp_path / "repo-a" / "redis").mkdir(parents=True)
    (tmp_path / "repo-b" / "cache").mkdir(parents=True)
    (tmp_path / "repo-a" / "redis" / "pdb.yaml").write_text(PDB)
    (tmp_path / "repo-b" / "cache" / "redis.yaml").write_text(WORKLOAD)
    return tmp_path


def _rules(tmp_path: Path, group_by: str) -> list[str]:
    result = lint_paths([str(tmp_path)], LintOptions(jobs=1, group_by=group_by))
    return sorted(f.rule for f in result.findings if f.rule.startswith("pdb-") or f.rule == "statefulset-without-pdb")


def test_unrelated_directories_do_not_join(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    rules = _rules(tree, "dir")
    assert "pdb-blocks-eviction" not in rules
    assert "pdb-selector-matches-nothing" in rules  # the PDB is alone in its application


def test_group_by_none_joins_everything(tmp_path: Path) -> None:
    assert "pdb-blocks-eviction" in _rules(_tree(tmp_path), "none")


def test_group_by_file(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pdb.yaml").write_text(PDB)
    (tmp_path / "app" / "sts.yaml").write_text(WORKLOAD)
    assert "pdb-blocks-eviction" in _rules(tmp_path, "dir")
    assert "pdb-blocks-eviction" not in _rules(tmp_path, "file")


def test_group_by_kustomization_joins_subdirectories(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "policy").mkdir(parents=True)
    (app / "workload").mkdir()
    (app / "kustomization.yaml").write_text("resources: [policy/pdb.yaml, workload/sts.yaml]\n")
    (app / "policy" / "pdb.yaml").write_text(PDB)
    (app / "workload" / "sts.yaml").write_text(WORKLOAD)
    assert "pdb-blocks-eviction" not in _rules(tmp_path, "dir")
    assert "pdb-blocks-eviction" in _rules(tmp_path, "kustomization")


def test_pool_groups_like_one_process(tmp_path: Path) -> None:
    """The process pool (64+ files) scopes the same way."""
    for i in range(70):
        d = tmp_path / f"repo{i}"
        d.mkdir()
        (d / "x.yaml").write_text(PDB if i % 2 else WORKLOAD)
    one = lint_paths([str(tmp_path)], LintOptions(jobs=1))
    many = lint_paths([str(tmp_path)], LintOptions(jobs=2))
    assert [f.to_json() for f in one.findings] == [f.to_json() for f in many.findings]
    assert not any(f.rule == "pdb-blocks-eviction" for f in one.findings)


def test_cli_group_by(run_berth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tree = _tree(tmp_path)
    assert "pdb-blocks-eviction" in run_berth("lint", "--group-by", "none", str(tree)).stdout
    assert "pdb-blocks-eviction" not in run_berth("lint", str(tree)).stdout
    bad = run_berth("lint", "--group-by", "repo", str(tree))
    assert bad.returncode == 2


@pytest.mark.parametrize("rule_id", ["pdb-blocks-eviction"])
def test_fixtures_still_join_within_a_file(rule_id: str) -> None:
    result = lint_paths([str(FIXTURES / rule_id / "bad.yaml")], LintOptions(jobs=1))
    assert any(f.rule == rule_id for f in result.findings)
