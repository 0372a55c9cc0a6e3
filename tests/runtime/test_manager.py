"""CheckpointManager on a real local directory: API, async semantics, retention, lock, corruption."""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from berth.checkpoint import CheckpointManager
from berth.errors import BerthError, UsageError
from berth.runtime import metrics
from berth.runtime.store import read_manifest

from .ckpt_child import make_state, same
from .conftest import free_port


def test_restore_of_an_empty_directory_is_none(tmp_path: Path) -> None:
    with CheckpointManager(tmp_path / "c") as mgr:
        assert mgr.restore() == (None, None)


def test_round_trip_of_a_mixed_state(tmp_path: Path) -> None:
    state = {
        "model": {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "mask": np.array([True, False])},
        "optimizer": {"state": {0: {"m": np.zeros(4)}, 1: {"m": np.ones(4)}}, "groups": [{"lr": 1e-3}]},
        "rng": b"\x00\xff" * 5,
        "epoch": 3,
        "loss": float("inf"),
        "name": "run-1",
        "shape": (3, 4),
        "scalar": np.float32(2.5),
        "nothing": None,
    }
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(7, state)
        step, back = mgr.restore()
    assert step == 7 and same(back, state)


def test_async_save_snapshots_before_returning(tmp_path: Path) -> None:
    w = np.ones(1 << 20, dtype=np.float32)
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, {"w": w})
        w[:] = 5  # training continues and changes the weights while the write is in flight
        mgr.wait()
        _, back = mgr.restore()
    assert isinstance(back, dict) and float(back["w"].max()) == 1.0


def test_background_error_surfaces_at_wait_and_next_save(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path / "c")
    try:
        mgr.save(1, {"w": np.ones(10)})
        mgr.wait()
        # Sabotage the volume under the writer thread: the step directory is a file now.
        (tmp_path / "c" / "step-000000000002").write_text("not a directory")
        mgr.save(2, {"w": np.ones(10)})
        with pytest.raises(OSError):
            mgr.wait()
        mgr.save(2, {"w": np.ones(10)})
        with pytest.raises(OSError):  # not waited for: the next save reports it
            mgr.save(3, {"w": np.ones(10)})
        mgr.save(3, {"w": np.ones(10)})
        mgr.wait()
        assert mgr.steps() == [1, 3]
        with pytest.raises(TypeError, match="model/opt: cannot checkpoint a lock"):
            mgr.save(4, {"model": {"opt": threading.Lock()}})
    finally:
        mgr.close()


def test_retention_keeps_last_n_and_every_kth(tmp_path: Path) -> None:
    with CheckpointManager(tmp_path / "c", keep_last=2, keep_every=4) as mgr:
        for step in range(1, 11):
            mgr.save(step, {"step": step, "w": np.full(3, step)})
        mgr.wait()
        assert mgr.steps() == [4, 8, 9, 10]
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")) == [
        "step-000000000004",
        "step-000000000008",
        "step-000000000009",
        "step-000000000010",
    ]


def test_second_manager_on_the_same_rank_is_refused(tmp_path: Path) -> None:
    with CheckpointManager(tmp_path / "c", rank=0, world_size=2):
        with pytest.raises(BerthError, match="another checkpoint manager"):
            CheckpointManager(tmp_path / "c", rank=0, world_size=2)
        CheckpointManager(tmp_path / "c", rank=1, world_size=2).close()  # other ranks may share it


def test_stale_temporaries_are_removed_at_start_up(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with CheckpointManager(root) as mgr:
        mgr.save(1, {"x": 1}, blocking=True)
    leftovers = [root / ".tmp-step-000000000002-rank-00000-dead", root / ".trash-rank-00000-dead"]
    other_rank = root / ".tmp-step-000000000002-rank-00001-alive"
    for d in [*leftovers, other_rank]:
        d.mkdir()
        (d / "tensors.safetensors").write_bytes(b"partial")
    with CheckpointManager(root) as mgr:
        assert mgr.restore()[0] == 1
    assert not any(d.exists() for d in leftovers)
    assert other_rank.exists()  # another rank's save in progress is not ours to remove


def test_flipped_byte_skips_the_step_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "c"
    with CheckpointManager(root, chunk_size=4096) as mgr:
        mgr.save(1, make_state(1), blocking=True)
        mgr.save(2, make_state(2), blocking=True)
    shard = root / "step-000000000002" / "rank-00000"
    data = bytearray((shard / "tensors.safetensors").read_bytes())
    data[5000] ^= 0x40
    (shard / "tensors.safetensors").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "berth.checkpoint"), CheckpointManager(root) as mgr:
        step, state = mgr.restore()
    assert step == 1 and same(state, make_state(1))
    assert "step 2" in caplog.text and "chunk 1" in caplog.text


def test_missing_manifest_means_the_step_does_not_exist(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with CheckpointManager(root) as mgr:
        mgr.save(1, {"x": 1}, blocking=True)
        mgr.save(2, {"x": 2}, blocking=True)
    (root / "step-000000000002" / "rank-00000" / "manifest.json").unlink()
    with CheckpointManager(root) as mgr:
        assert mgr.restore() == (1, {"x": 1})


def test_rank_and_world_size_come_from_the_rendezvous_env(tmp_path: Path) -> None:
    env = {"POD_INDEX": "2", "BERTH_REPLICAS": "4", "BERTH_CHECKPOINT_DIR": str(tmp_path / "c")}
    with CheckpointManager(environ=env) as mgr:
        assert (mgr.rank, mgr.world_size) == (2, 4)
        mgr.save(5, {"x": 1}, blocking=True)
        assert read_manifest(mgr.store.shard_dir(5)).world_size == 4
    with CheckpointManager(environ={**env, "RANK": "3", "WORLD_SIZE": "8"}) as mgr:
        assert (mgr.rank, mgr.world_size) == (3, 8)
    with pytest.raises(UsageError, match="BERTH_CHECKPOINT_DIR"):
        CheckpointManager(environ={})


def test_multi_rank_restore_without_agreement_is_refused(tmp_path: Path) -> None:
    with CheckpointManager(tmp_path / "c", rank=0, world_size=2) as mgr, pytest.raises(BerthError, match="agree"):
        mgr.restore()


def test_metrics_are_served_and_follow_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("BERTH_METRICS_ADDR", "127.0.0.1")
    served = metrics.serve(port)
    before = metrics.BYTES.labels("save")._value.get()
    with CheckpointManager(tmp_path / "c", metrics_port=port) as mgr:
        mgr.save(42, {"w": np.ones(1000)}, blocking=True)
    body = urllib.request.urlopen(f"http://127.0.0.1:{served}/metrics", timeout=5).read().decode()
    assert "berth_checkpoint_last_step 42.0" in body
    assert 'berth_checkpoint_bytes_total{op="save"}' in body
    assert "berth_checkpoint_save_duration_seconds_count" in body
    assert "berth_checkpoint_last_success_timestamp_seconds" in body
    assert metrics.BYTES.labels("save")._value.get() - before >= 8000


def test_a_file_as_the_directory_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    for where in (tmp_path / "f", tmp_path / "f" / "ckpt"):
        with pytest.raises(UsageError, match="not a directory"):
            CheckpointManager(where)


def test_a_bad_metrics_port_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_METRICS_PORT", "metrics")
    with pytest.raises(UsageError, match="BERTH_METRICS_PORT='metrics' is not a port number"):
        CheckpointManager(tmp_path / "c")


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(3, {"v": 1}, blocking=True)
        mgr.save(3, {"v": 2}, blocking=True)
        assert mgr.restore() == (3, {"v": 2})
    assert len(os.listdir(tmp_path / "c" / "step-000000000003")) == 1


def test_torch_tensors_round_trip_when_torch_is_installed(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = {"w": torch.randn(4, 3), "h": torch.ones(5, dtype=torch.bfloat16), "step": torch.tensor(3)}
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state)
        _, back = mgr.restore()
    assert isinstance(back, dict)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value)


def test_jax_arrays_round_trip_when_jax_is_installed(tmp_path: Path) -> None:
    jnp = pytest.importorskip("jax.numpy")
    state = {"params": {"w": jnp.arange(6.0).reshape(2, 3)}, "step": 4}
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(4, state)
        _, back = mgr.restore()
    assert isinstance(back, dict)
    assert type(back["params"]["w"]) is type(state["params"]["w"])
    assert (back["params"]["w"] == state["params"]["w"]).all()


def test_big_async_save_is_a_valid_safetensors_file(tmp_path: Path) -> None:
    """Snapshots of 4 MiB and more are written with O_DIRECT from the page-aligned image."""
    from safetensors.numpy import load_file

    state = {"a": np.random.default_rng(5).random(3_000_001), "b": np.arange(5, dtype=np.int16)}
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state)
        mgr.save(2, {"a": state["a"] * 2, "b": state["b"]})  # the staging buffer is reused
        mgr.wait()
        theirs = load_file(str(tmp_path / "c" / "step-000000000002" / "rank-00000" / "tensors.safetensors"))
        assert theirs["a"].tobytes() == (state["a"] * 2).tobytes() and theirs["b"].tobytes() == state["b"].tobytes()
        step, back = mgr.restore(step=1)
    assert step == 1 and same(back, state)
