"""The ``berth lint`` command end to end, in a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ..conftest import berth_process
from .conftest import FIXTURES


def test_exit_codes(run_berth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clean = FIXTURES / "storageclass-unencrypted" / "good.yaml"
    assert run_berth("lint", str(clean)).returncode == 0
    warn = FIXTURES / "storageclass-unencrypted" / "bad.yaml"
    assert run_berth("lint", str(warn)).returncode == 1
    assert run_berth("lint", "--fail-on", "error", str(warn)).returncode == 0
    assert run_berth("lint", "--fail-on", "info", str(clean)).returncode == 0
    broken = run_berth("lint", str(FIXTURES / "yaml-syntax" / "bad.yaml"), str(warn))
    assert broken.returncode == 2
    assert "storageclass-unencrypted" in broken.stdout, "what could be read is still reported"
    missing = run_berth("lint", str(tmp_path / "nope.yaml"), "-f", "json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)[0]["rule"] == "unreadable-file"
    usage = run_berth("lint", "--format", "xml", str(clean))
    assert usage.returncode == 2 and "unknown --format" in usage.stderr
    assert run_berth("lint").returncode == 2


def test_stdin(run_berth) -> None:  # type: ignore[no-untyped-def]
    text = (FIXTURES / "privileged-container" / "bad.yaml").read_text()
    out = run_berth("lint", "-", "-f", "json", stdin=text)
    assert out.returncode == 1
    assert {r["file"] for r in json.loads(out.stdout)} == {"<stdin>"}


def test_binary_stdin_is_a_finding_not_a_traceback() -> None:
    out = berth_process("lint", "-", stdin=b"kind: \xd0\xff\n")
    assert out.returncode == 2, out.stderr
    assert "<stdin>" in out.stdout and "unreadable-file  not UTF-8" in out.stdout
    assert "Traceback" not in out.stderr


def test_list_and_explain(run_berth) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(run_berth("lint", "--list-rules", "-f", "json").stdout)
    assert len(listed) >= 42
    assert {"id", "severity", "summary", "equivalents"} <= set(listed[0])
    explained = run_berth("lint", "--explain", "rwo-claim-multi-attach")
    assert explained.returncode == 0
    assert "Multi-Attach" in explained.stdout and "## Fix" in explained.stdout
    assert run_berth("lint", "--explain", "nope").returncode == 2


def test_process_pool_matches_single_process(run_berth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Enough files to use the worker pool; cross-object findings still see every file."""
    for rule in sorted(p.name for p in FIXTURES.iterdir() if p.name != "unreadable-file"):
        for which in ("bad", "good"):
            shutil.copy(FIXTURES / rule / f"{which}.yaml", tmp_path / f"{rule}-{which}.yaml")
    assert len(list(tmp_path.iterdir())) >= 64
    single = run_berth("lint", "-j", "1", "-f", "json", str(tmp_path))
    pooled = run_berth("lint", "-j", "2", "-f", "json", str(tmp_path))
    assert single.returncode == pooled.returncode == 2
    assert json.loads(single.stdout) == json.loads(pooled.stdout)
    assert len(json.loads(single.stdout)) > 100


def test_unreadable_directory_in_a_walk_is_reported() -> None:
    """A directory the walk cannot enter is an unreadable-file finding, not silently skipped."""
    drop: list[str] = []
    if os.geteuid() == 0:  # root reads a mode-000 directory anyway: run berth as nobody
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # Not under pytest's tmp_path: its parents are private to root, and nobody must reach the tree.
    with tempfile.TemporaryDirectory(dir="/tmp") as name:
        top = Path(name)
        top.chmod(0o755)
        (top / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
        locked = top / "locked"
        locked.mkdir()
        (locked / "hidden.yaml").write_text("{}")
        locked.chmod(0)
        try:
            out = berth_process("lint", str(top), "-f", "json", cwd="/", via=drop)
        finally:
            locked.chmod(0o755)
    assert out.returncode == 2, out.stderr
    found = json.loads(out.stdout)
    assert [(f["file"], f["rule"], f["message"]) for f in found] == [
        (str(locked), "unreadable-file", "cannot read directory: Permission denied")
    ]
