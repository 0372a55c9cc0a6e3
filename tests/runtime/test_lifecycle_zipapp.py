"""berth's zipapp (``lifecycle.runner: inject``): ``berth run`` with nothing but python3.

The archive runs under ``python3 -I -S``: no site-packages (so no berth install, no typer,
lightkube or pydantic), no PYTHONPATH, in a directory of its own. A module ``berth run`` needs
but the archive lacks, or a third-party import in one it has, fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from berth import pyz
from tests.runtime.conftest import free_port
from tests.runtime.lifecycle_harness import LocalGang, spec

FAST = {"backoffSeconds": 0, "stopGraceSeconds": 2, "runner": "inject"}


def _bare_python(bin_dir: Path) -> Path:
    """A ``python3`` on PATH that sees only the standard library (as in a stock python image)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "python3"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _pyz(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "berth.pyz"
    path.write_bytes(pyz.build())
    return path


def test_the_archive_is_deterministic_and_stdlib_only(tmp_path: Path) -> None:
    assert pyz.build() == pyz.build()  # no timestamps: one ConfigMap whatever renders it
    archive = _pyz(tmp_path / "work")
    bare = _bare_python(tmp_path / "bin")
    env = {"PATH": f"{bare}:/usr/bin:/bin"}
    peers = {
        **env,
        "BERTH_NAME": "demo",
        "BERTH_SERVICE": "demo",
        "BERTH_NAMESPACE": "train",
        "BERTH_REPLICAS": "1",
        "BERTH_PORT": "2222",
        "BERTH_FRAMEWORK": "pytorch",
        "POD_INDEX": "0",
    }
    run = [
        str(bare / "python3"),
        str(archive),
        "run",
        "--dns-timeout",
        "0",
        "--",
        "sh",
        "-c",
        'echo "$RANK $MASTER_ADDR"',
    ]
    done = subprocess.run(run, cwd=archive.parent, env=peers, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The rendezvous env of rank 0 reached the command (the archive computed it, as `berth run` does).
    assert done.stdout.strip() == "0 demo-0.demo.train.svc.cluster.local", done.stdout
    true = subprocess.run([*run[:6], "true"], cwd=archive.parent, env=peers, capture_output=True, timeout=60)
    assert true.returncode == 0, true.stderr
    # Outside a rendered pod: the CLI's message and exit code, no traceback.
    bad = subprocess.run(run, cwd=archive.parent, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("error: missing rendezvous environment"), bad.stderr
    assert "Traceback" not in bad.stderr
    usage = subprocess.run([*run[:2], "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: berth.pyz run"), usage.stderr


def test_two_ranks_supervised_by_the_injected_runner_complete(tmp_path: Path) -> None:
    """The rendered container (preamble, then `python3 "$BERTH_RUNNER" run`) with a bare python3."""
    cluster = spec("demo", 2, FAST)
    bare = _bare_python(tmp_path / "bin")
    gang = LocalGang(
        tmp_path / "gang",
        cluster,
        free_port(),
        {"PATH": f"{bare}:/usr/bin:/bin", "TEST_STEPS": "10", "TEST_STEP_S": "0.02"},
    )
    try:
        for rank in range(2):
            _pyz(gang.volume(rank, "/berth-runner"))
        gang.start_all()
        gang.wait_for(lambda: gang.run_phase() == "Succeeded", 60)
        assert all(gang.state(rank)["completed"] for rank in range(2))
        log = (gang.root / "pod-0.log").read_text()
        assert "every rank completed: the run Succeeded" in log and "no python3" not in log
        # The supervisor is the archive, not an installed berth.
        cmdline = Path(f"/proc/{gang.procs[0].pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:3] == [sys.executable.encode(), b"-I", b"-S"] and cmdline[3].endswith(b"/berth.pyz"), cmdline
    finally:
        gang.stop()


def test_an_image_without_python3_runs_the_command_without_the_supervisor(tmp_path: Path) -> None:
    """The rendered command in an image with sh and no python3 (the preamble needs only sh's builtins)."""
    cluster = spec("demo", 1, FAST)
    gang = LocalGang(tmp_path / "gang", cluster, free_port(), {})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    done = subprocess.run(
        [*gang.container["command"][:4], "sh", "-c", 'echo "trained as rank $RANK"'],
        env={**gang.env_for(0), "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trained as rank 0"
    assert "berth: no python3 in this image: running without the supervisor" in done.stderr
