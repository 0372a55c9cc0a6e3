"""berth probe on real filesystems: this machine's disk, a full tmpfs, and a loop device the kernel throttles."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from berth.runtime.ioprobe import MIB, ProbeError, probe

from ..conftest import BERTH, berth_process
from .throttle import throttled_volume


def test_probe_measures_the_disk_and_leaves_nothing(tmp_path: Path) -> None:
    result = probe(tmp_path, size=8 * MIB, seconds=0.3, queue_depth=4, fsyncs=20)
    # ext4 (and tmpfs since Linux 6.6) take O_DIRECT; where refused, the result says so.
    assert result.direct or "refuses O_DIRECT" in result.notes[0]
    assert result.file_size == 8 * MIB and result.queue_depth == 4
    figures = (result.seq_write_mib_s, result.seq_read_mib_s, result.rand_read_iops, result.rand_write_iops)
    assert all(f > 0 for f in figures), figures
    assert 0 < result.fsync_p50_ms <= result.fsync_p99_ms
    assert os.listdir(tmp_path) == []


def test_probe_cli_json(tmp_path: Path) -> None:
    done = berth_process(
        "probe", str(tmp_path), "--size", "4Mi", "--seconds", "0.2", "--queue-depth", "2", "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fileSize"] == 4 * MIB and report["queueDepth"] == 2 and report["promised"] is None
    assert report["randReadIops"] > 0 and report["seqWriteMiBps"] > 0 and report["findings"] == []
    assert done.stderr == ""  # -o json: no progress lines


def test_full_tmpfs_is_one_clear_message(small_tmpfs: Path) -> None:
    filler = small_tmpfs / "data.bin"
    filler.write_bytes(b"x" * (3 * MIB))
    with pytest.raises(ProbeError) as err:
        probe(small_tmpfs, size=2 * MIB, seconds=0.1)
    assert f"not enough space in {small_tmpfs} for the probe" in err.value.message
    assert "(the volume is full)" in err.value.message
    done = berth_process("probe", str(small_tmpfs), "--size", "2Mi")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: not enough space in {small_tmpfs}") and "Traceback" not in done.stderr
    assert "hint: free space on the volume, or probe with a smaller --size" in done.stderr
    assert sorted(os.listdir(small_tmpfs)) == ["data.bin"] and filler.stat().st_size == 3 * MIB


def test_probe_fits_what_is_left(small_tmpfs: Path) -> None:
    """The same nearly full tmpfs still takes a probe that fits: the check is not a blanket refusal."""
    (small_tmpfs / "data.bin").write_bytes(b"x" * (2 * MIB))
    result = probe(small_tmpfs, size=1 * MIB, seconds=0.1, fsyncs=5)
    assert result.seq_write_mib_s > 0 and sorted(os.listdir(small_tmpfs)) == ["data.bin"]


def test_probe_measures_the_limit_of_a_throttled_disk(tmp_path: Path) -> None:
    """ext4 on a loop device capped by the kernel at 800 IOPS and 40 MiB/s: the probe reports those."""
    with throttled_volume(tmp_path, iops=800, mib_s=40) as disk:
        argv = ("probe", str(disk.mount), "--size", "24Mi", "--seconds", "1.5", "--queue-depth", "8", "-o", "json")
        # gp3's baseline, given by hand as inside a pod without cluster access
        argv += ("--expect-iops", "3000", "--expect-mibps", "125")
        done = subprocess.run(disk.command(*BERTH, *argv), capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["direct"]
        for key, limit in (("randReadIops", 800), ("randWriteIops", 800), ("seqReadMiBps", 40), ("seqWriteMiBps", 40)):
            assert 0.8 * limit <= report[key] <= 1.25 * limit, (key, report)
        assert sorted(os.listdir(disk.mount)) == ["lost+found"]
    assert report["promised"] == {"iops": 3000, "throughputMiBps": 125, "source": "--expect-iops/--expect-mibps"}
    assert len(report["findings"]) == 4 and {f["code"] for f in report["findings"]} == {"slow-io"}
    assert "of the 3,000 IOPS expected" in report["findings"][0]["problem"]
