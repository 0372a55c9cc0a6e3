"""Hostile input is bounded: each breach is one finding, exit 2, no traceback, and other files are still linted.

Run as a subprocess so wall time and peak memory (the child's max RSS) are those of a real ``berth lint``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from berth.lint.loader import MAX_FILE_BYTES

from .conftest import FIXTURES

# 552 bytes of YAML that would expand to 10**9 scalars.
_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
)


# VmHWM, not getrusage(RUSAGE_SELF): Linux carries ru_maxrss across fork+exec, so a child of a
# large pytest process would report pytest's own peak; VmHWM belongs to the child's new address space.
_CHILD = """
import atexit, resource, sys
def peak():
    with open("/proc/self/status") as fh:
        own = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    kib = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.stderr.write(f"\\nPEAK_KIB {kib}\\n")
atexit.register(peak)
from berth.cli.app import main
sys.argv[0] = "berth"
sys.exit(main())
"""


def _berth(*args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``berth`` in a child; (result, wall seconds, the child's own peak RSS in MiB)."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, "lint", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    wall = time.monotonic() - start
    kib = int(result.stderr.rsplit("PEAK_KIB ", 1)[1].split()[0])
    return result, wall, kib / 1024


def test_hostile_files_are_findings_and_the_rest_is_linted(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(_BOMB + "\n")
    (tmp_path / "deep.yaml").write_text("apiVersion: v1\nkind: X\nx: " + "[" * 990 + "]" * 990 + "\n")
    with open(tmp_path / "huge.yaml", "wb") as fh:  # sparse: costs no disk, would cost minutes to parse
        fh.truncate(MAX_FILE_BYTES + 1)
    (tmp_path / "real.yaml").write_bytes((FIXTURES / "image-latest-tag" / "bad.yaml").read_bytes())
    result, wall, peak = _berth("-j", "1", str(tmp_path))
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2
    out = result.stdout
    assert "bomb.yaml" in out and "aliases" in out
    assert "deep.yaml" in out and "nest" in out
    assert "huge.yaml" in out and "MiB limit" in out
    assert "image-latest-tag" in out  # the other file was still linted
    assert wall < 30, f"took {wall:.1f}s"
    assert peak < 200, f"peak RSS {peak:.0f} MiB"


def test_alias_bomb_alone_is_fast_and_small(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(_BOMB + "\n")
    assert len(_BOMB) < 600
    result, wall, peak = _berth(str(tmp_path / "bomb.yaml"))
    assert result.returncode == 2 and "aliases" in result.stdout
    assert wall < 10 and peak < 200, (wall, peak)
