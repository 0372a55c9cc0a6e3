"""``berth ckpt`` and ``berth run`` as a user runs them: real processes, real files, real DNS lookups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from berth.checkpoint import CheckpointManager
from berth.rendezvous import RendezvousParams

from ..conftest import berth_process
from .ckpt_child import make_state, same
from .conftest import rot_in_the_archive


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    root = tmp_path / "ckpt"
    for rank in range(2):
        with CheckpointManager(root, rank=rank, world_size=2, keep_last=None, chunk_size=4096) as mgr:
            for step in (10, 20, 30):
                mgr.save(step, make_state(step, rank), blocking=True)
    return root


def test_list_and_show_as_json(ckpt_dir: Path) -> None:
    listed = json.loads(berth_process("ckpt", "list", str(ckpt_dir), "-o", "json").stdout)
    assert [s["step"] for s in listed] == [10, 20, 30]
    assert all(s["complete"] and s["ranks"] == [0, 1] and s["worldSize"] == 2 for s in listed)
    shown = json.loads(berth_process("ckpt", "show", str(ckpt_dir), "20", "-o", "json").stdout)
    tensors = {t["name"]: t for t in shown["ranks"]["1"]["tensors"]}
    assert tensors["model/w"] == {"name": "model/w", "dtype": "F32", "shape": [3000]}


def test_verify_exits_1_naming_the_file_and_chunk(ckpt_dir: Path) -> None:
    assert berth_process("ckpt", "verify", str(ckpt_dir)).returncode == 0
    bad = ckpt_dir / "step-000000000020" / "rank-00001" / "tensors.safetensors"
    data = bytearray(bad.read_bytes())
    data[2 * 4096 + 100] ^= 1
    bad.write_bytes(bytes(data))
    out = berth_process("ckpt", "verify", str(ckpt_dir))
    assert out.returncode == 1
    assert f"{bad} chunk 2" in out.stderr and "Traceback" not in out.stderr
    doc = json.loads(berth_process("ckpt", "verify", str(ckpt_dir), "-o", "json").stdout)
    assert doc["problems"] == [
        {"step": 20, "rank": 1, "path": str(bad), "chunk": 2, "error": doc["problems"][0]["error"]}
    ]


def test_prune_is_a_dry_run_unless_yes(ckpt_dir: Path) -> None:
    dry = json.loads(berth_process("ckpt", "prune", str(ckpt_dir), "--keep-last", "1", "-o", "json").stdout)
    assert dry == {"dryRun": True, "planned": [10, 20], "removed": []}
    assert len(list(ckpt_dir.glob("step-*"))) == 3
    done = json.loads(berth_process("ckpt", "prune", str(ckpt_dir), "--keep-last", "1", "--yes", "-o", "json").stdout)
    assert done["removed"] == [10, 20]
    assert [p.name for p in ckpt_dir.glob("step-*")] == ["step-000000000030"]


def test_prune_refuses_while_a_manager_writes(ckpt_dir: Path) -> None:
    with CheckpointManager(ckpt_dir, rank=1, world_size=2):
        out = berth_process("ckpt", "prune", str(ckpt_dir), "--keep-last", "1", "--yes")
    assert out.returncode == 1 and "another checkpoint manager" in out.stderr
    assert len(list(ckpt_dir.glob("step-*"))) == 3


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    out = berth_process("ckpt", "list", str(tmp_path / "nope"))
    assert out.returncode == 2 and "no such checkpoint directory" in out.stderr and "Traceback" not in out.stderr
    out = berth_process("ckpt", "archive", str(tmp_path), env={"BERTH_ARCHIVE_URL": ""})
    assert out.returncode == 2 and "no archive given" in out.stderr
    out = berth_process("ckpt", "archive", str(tmp_path), "--to", "http://bucket/run")
    assert out.returncode == 2 and "is not s3://bucket/prefix" in out.stderr
    assert "upload" not in out.stderr  # refused before the progress bar is drawn
    (tmp_path / "a-file").write_text("")
    out = berth_process("ckpt", "verify", str(tmp_path / "a-file"))
    assert out.returncode == 2 and "no such checkpoint directory" in out.stderr and "Traceback" not in out.stderr


def test_archive_unreachable_is_one_line(tmp_path: Path) -> None:
    env = {  # nothing listens on port 9 of 127.0.0.1: the connection is refused at once
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
    }
    out = berth_process("ckpt", "restore", str(tmp_path / "d"), "--from", "s3://bucket/run", env=env)
    assert out.returncode == 1 and "s3://bucket/run: listing failed" in out.stderr
    assert "Traceback" not in out.stderr


def test_corrupted_manifest_is_listed_as_a_problem_not_archived(ckpt_dir: Path) -> None:
    manifest = ckpt_dir / "step-000000000020" / "rank-00000" / "manifest.json"
    manifest.write_text("{not json")
    listed = {s["step"]: s for s in json.loads(berth_process("ckpt", "list", str(ckpt_dir), "-o", "json").stdout)}
    assert not listed[20]["complete"] and not listed[20]["archived"]
    assert listed[20]["problems"] and str(manifest) in listed[20]["problems"][0]
    out = berth_process("ckpt", "verify", str(ckpt_dir))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.count(str(manifest)) == 1, out.stderr  # named once, then what is wrong with it


@pytest.mark.s3
def test_archive_then_restore_into_an_empty_directory(ckpt_dir: Path, tmp_path: Path, s3: str) -> None:
    up = berth_process("ckpt", "archive", str(ckpt_dir), "--to", s3)
    assert up.returncode == 0, up.stderr
    assert "upload" in up.stderr  # the progress bar
    for marker in ckpt_dir.glob("step-*/rank-*/ARCHIVED"):
        marker.unlink()  # as if the uploader died between the upload and the marker
    again = json.loads(berth_process("ckpt", "archive", str(ckpt_dir), "--to", s3, "-o", "json").stdout)
    assert again["uploaded"] == []  # nothing missing any more
    listed = json.loads(berth_process("ckpt", "list", str(ckpt_dir), "-o", "json").stdout)
    assert all(s["archived"] for s in listed)  # marked from what the archive holds
    for rank in range(2):  # an old step that never reached the archive
        with CheckpointManager(ckpt_dir, rank=rank, world_size=2, keep_last=None) as mgr:
            mgr.save(1, make_state(1, rank), blocking=True)
    pruned = json.loads(berth_process("ckpt", "prune", str(ckpt_dir), "--keep-last", "1", "--yes", "-o", "json").stdout)
    assert pruned["planned"] == [1, 10, 20] and pruned["removed"] == [10, 20]  # the only copy of 1 stays
    (tmp_path / "a-file").write_text("")
    refused = berth_process("ckpt", "restore", str(tmp_path / "a-file"), "--from", s3)
    assert refused.returncode == 2 and "not a directory" in refused.stderr and "Traceback" not in refused.stderr
    target = tmp_path / "new-volume"
    down = berth_process("ckpt", "restore", str(target), "--from", s3, "-o", "json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["step"] == 30
    for rank in range(2):
        # Both ranks' shards are in this one directory, so each rank's own view is the agreement.
        with CheckpointManager(target, rank=rank, world_size=2, agree=lambda s: sorted(s, reverse=True)) as mgr:
            step, state = mgr.restore()
        assert step == 30 and same(state, make_state(30, rank))
    with CheckpointManager(ckpt_dir, rank=0, world_size=2, keep_last=None) as mgr:
        mgr.save(30, make_state(31, 0), blocking=True)  # the step saved again, with other content
    resent = json.loads(
        berth_process("ckpt", "archive", str(ckpt_dir), "--to", s3, "--step", "30", "-o", "json").stdout
    )
    assert resent["uploaded"] == [{"step": 30, "rank": 0}]


RDZV = {
    "BERTH_NAME": "llm",
    "BERTH_SERVICE": "llm-workers",
    "BERTH_NAMESPACE": "team",
    "BERTH_REPLICAS": "3",
    "BERTH_PORT": "29500",
    "BERTH_FRAMEWORK": "pytorch",
    "BERTH_GPUS_PER_POD": "2",
    "POD_NAME": "llm-2",
}


def test_run_execs_with_the_rendezvous_env_of_the_single_source_of_truth(tmp_path: Path) -> None:
    out = berth_process(
        "run", "--dns-timeout", "0", "--", sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))",
        env=RDZV,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    expected = RendezvousParams.from_env(RDZV).env_for(2)
    assert {k: got[k] for k in expected} == expected
    assert got["RANK"] == "4" and got["WORLD_SIZE"] == "6"


def test_run_fails_clearly_when_peers_never_resolve() -> None:
    out = berth_process("run", "--dns-timeout", "1", "--", "true", env=RDZV)
    assert out.returncode == 1
    assert "llm-0.llm-workers.team.svc.cluster.local" in out.stderr and "Traceback" not in out.stderr


def test_run_waits_until_peers_resolve(tmp_path: Path) -> None:
    """Real resolver, private /etc/hosts (mount namespace) that gains the peers after a while."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("needs root for a private mount namespace")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    peers = RendezvousParams.from_env(RDZV).hosts()
    script = (
        f"mount --bind {hosts} /etc/hosts && "
        f"(sleep 1.5; printf '127.0.0.1 %s\\n' {' '.join(peers)} >> {hosts}) & "
        # The command checks the peers are in /etc/hosts already: it ran only after berth waited for them.
        f"exec {sys.executable} -m berth run --dns-timeout 30 -- "
        f"sh -c 'echo started $NODE_RANK; grep -q {peers[0]} /etc/hosts && echo peers present'"
    )
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **RDZV},
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["started 2", "peers present"]


def test_numpy_example_trains_saves_and_resumes(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "train_numpy.py"
    first = subprocess.run(
        [sys.executable, str(example), "--dir", str(tmp_path), "--steps", "30"], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert "starting at step 0" in first.stdout
    second = subprocess.run(
        [sys.executable, str(example), "--dir", str(tmp_path), "--steps", "40"], capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr
    assert "resumed from step 30" in second.stdout
    with CheckpointManager(tmp_path) as mgr:
        step, state = mgr.restore()
    assert step == 40 and isinstance(state, dict) and np.isfinite(state["loss"])


def test_torch_example_runs_on_cpu_when_torch_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    example = Path(__file__).parents[2] / "examples" / "train_torch.py"
    for steps in ("20", "30"):
        out = subprocess.run(
            [sys.executable, str(example), "--dir", str(tmp_path), "--steps", steps], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
    assert "resumed from step 20" in out.stdout


def test_verify_counts_steps_and_says_when_there_is_nothing_to_verify(ckpt_dir: Path, tmp_path: Path) -> None:
    good = berth_process("ckpt", "verify", str(ckpt_dir))
    assert good.returncode == 0, good.stderr
    assert "all 3 checkpoint step(s) verify" in good.stdout
    doc = json.loads(berth_process("ckpt", "verify", str(ckpt_dir), "-o", "json").stdout)
    assert doc == {"ok": True, "steps": 3, "problems": []}
    empty = tmp_path / "empty"
    empty.mkdir()
    out = berth_process("ckpt", "verify", str(empty))
    assert out.returncode == 0 and f"nothing to verify: no committed checkpoint in {empty}" in out.stdout


def test_restore_of_a_corrupted_archive_object_commits_nothing(ckpt_dir: Path, tmp_path: Path, s3: str) -> None:
    assert berth_process("ckpt", "archive", str(ckpt_dir), "--to", s3).returncode == 0
    name = rot_in_the_archive(s3, 30, 1)
    target = tmp_path / "new-volume"
    out = berth_process("ckpt", "restore", str(target), "--from", s3, "--step", "30")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert name in out.stderr and "chunk" in out.stderr  # names the file and chunk
    # Nothing half-restored: no committed step, no staging directory left behind.
    assert not list(target.glob("step-*/rank-00001")) and not list(target.glob(".tmp-*"))
