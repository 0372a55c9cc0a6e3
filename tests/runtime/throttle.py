"""A disk with a known speed: ext4 on a loop device, throttled by the kernel's blkio controller.

A cloud volume's IOPS and MiB/s are limits the provider enforces; this is the same thing here:
cgroup v1 ``blkio.throttle.{read,write}_{iops,bps}_device`` (a hybrid host, like this one) or
cgroup v2 ``io.max`` (a unified host) on the loop device caps direct I/O of every process in the
cgroup. The probe (and fio) must then measure the limit, whatever the CPU load. Needs root and
one of the two; skips otherwise unless BERTH_REQUIRE_KUBELET is set (CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BLKIO = Path("/sys/fs/cgroup/blkio")
UNIFIED = Path("/sys/fs/cgroup")  # cgroup v2 mounted at the root: io.max


def _hierarchy() -> Path | None:
    """Where to make the cgroup: v1 blkio if mounted, else a v2 root that offers the io controller."""
    if (BLKIO / "cgroup.procs").exists():
        return BLKIO
    controllers = UNIFIED / "cgroup.controllers"
    if controllers.exists() and "io" in controllers.read_text().split():
        return UNIFIED
    return None


@dataclass(frozen=True)
class Throttled:
    """The mounted filesystem and the cgroup whose processes see the limits."""

    mount: Path
    cgroup: Path
    iops: int
    mib_s: int

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the cgroup (the shell moves itself in, then execs)."""
        return ["sh", "-c", f'echo $$ > {self.cgroup}/cgroup.procs && exec "$@"', "throttled", *argv]


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def throttled_volume(tmp_path: Path, *, iops: int, mib_s: int, size_mib: int = 160) -> Iterator[Throttled]:
    """A fresh ext4 of ``size_mib`` limited to ``iops`` and ``mib_s`` each way; all undone afterwards."""
    root = _hierarchy()
    if os.geteuid() != 0 or root is None:
        reason = "a throttled loop device needs root and the blkio (v1) or io (v2) cgroup controller"
        if os.environ.get("BERTH_REQUIRE_KUBELET"):
            pytest.fail(f"BERTH_REQUIRE_KUBELET is set but {reason}")
        pytest.skip(reason)
    image, mount = tmp_path / "disk.img", tmp_path / "mnt"
    with open(image, "wb") as f:
        f.truncate(size_mib << 20)
    mount.mkdir()
    loop = _run("losetup", "--find", "--show", "--direct-io=on", str(image))
    assert root is not None
    cgroup = root / f"berth-test-{uuid.uuid4().hex[:8]}"
    mounted = False
    try:
        _run("mkfs.ext4", "-q", "-F", loop)
        _run("mount", loop, str(mount))
        mounted = True
        os.chmod(mount, 0o777)
        device = _run("lsblk", "-dno", "MAJ:MIN", loop).replace(" ", "")
        cgroup.mkdir()
        if root == BLKIO:
            for knob, value in (("iops", iops), ("bps", mib_s << 20)):
                for side in ("read", "write"):
                    (cgroup / f"blkio.throttle.{side}_{knob}_device").write_text(f"{device} {value}\n")
        else:
            (root / "cgroup.subtree_control").write_text("+io\n")
            bps = mib_s << 20
            (cgroup / "io.max").write_text(f"{device} riops={iops} wiops={iops} rbps={bps} wbps={bps}\n")
        yield Throttled(mount, cgroup, iops, mib_s)
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)
        if cgroup.exists():
            cgroup.rmdir()  # empty: every process run in it has exited
