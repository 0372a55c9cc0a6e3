"""Async snapshots (zero-copy for immutable JAX arrays, a copy for mutable ones), staging memory
faulted in ahead of the first save, restores JAX adopts without a copy, and unusual input."""

from __future__ import annotations

import gc
import json
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from berth.checkpoint import CheckpointManager
from berth.runtime.safetensors_io import DATA_ALIGN, host_buffer

from .ckpt_child import same

TENSORS = "step-{:012d}/rank-00000/tensors.safetensors"


def _header(path: Path) -> tuple[int, dict[str, Any]]:
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    return 8 + hlen, json.loads(raw[8 : 8 + hlen])


# -- immutable arrays: zero-copy ------------------------------------------------------------------


def test_jax_snapshot_is_zero_copy_and_keeps_the_values_of_save_time(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    params = {"w": jnp.arange(1 << 20, dtype=jnp.float32), "b": jnp.ones((3, 5), dtype=jnp.bfloat16)}
    expected = {k: np.asarray(v).copy() for k, v in params.items()}
    step_fn = jax.jit(lambda p: jax.tree_util.tree_map(lambda x: x * 3 + 1, p), donate_argnums=0)
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, {"params": params, "step": 1})
        # The training step replaces the arrays, donating the old buffers to XLA.
        for _ in range(3):
            params = step_fn(params)
        jax.block_until_ready(params)
        mgr.wait()
        assert mgr._staging.size == 0  # nothing was copied into host staging memory
        _, back = mgr.restore()
    assert isinstance(back, dict)
    for key, value in expected.items():
        got = back["params"][key]
        assert isinstance(got, jax.Array) and got.dtype == value.dtype
        assert np.asarray(got).tobytes() == value.tobytes()


def test_a_deleted_jax_array_is_refused_with_its_path(tmp_path: Path) -> None:
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.ones(10)
    x.delete()
    with CheckpointManager(tmp_path / "c") as mgr, pytest.raises(TypeError, match="params/x: the JAX array was"):
        mgr.save(1, {"params": {"x": x}})


def test_big_tensors_of_odd_sizes_start_aligned_behind_padding_entries(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from safetensors.numpy import load_file

    sizes = [100_001, 70_003, 16_385, 5, 131_071]  # none a multiple of 16 float32s
    state = {f"t{i}": jnp.arange(n, dtype=jnp.float32) for i, n in enumerate(sizes)}
    state["np"] = np.arange(50_001, dtype=np.int16)
    for blocking in (False, True):
        root = tmp_path / str(blocking)
        with CheckpointManager(root) as mgr:
            mgr.save(1, state, blocking=blocking)
            mgr.wait()
            _, back = mgr.restore()
        base, header = _header(root / TENSORS.format(1))
        assert isinstance(back, dict)
        for key, value in state.items():
            assert np.asarray(back[key]).tobytes() == np.asarray(value).tobytes(), key
            if np.asarray(value).nbytes >= 64 << 10:
                assert (base + header[key]["data_offsets"][0]) % DATA_ALIGN == 0, key
        pads = [k for k in header if k.startswith("__berth_pad")]
        assert pads  # the padding entries are in the file, zeros, readable by safetensors ...
        theirs = load_file(str(root / TENSORS.format(1)))
        assert all(not theirs[k].any() for k in pads) and theirs["t0"].tobytes() == np.asarray(state["t0"]).tobytes()
        manifest = json.loads((root / "step-000000000001" / "rank-00000" / "manifest.json").read_text())
        assert sorted(t["name"] for t in manifest["tensors"]) == sorted(state)  # ... and not in the index
        ptr = {k: back[k].unsafe_buffer_pointer() for k in ("t0", "t1", "t4")}
        assert ptr["t1"] - ptr["t0"] == header["t1"]["data_offsets"][0] - header["t0"]["data_offsets"][0]
        assert ptr["t4"] - ptr["t0"] == header["t4"]["data_offsets"][0] - header["t0"]["data_offsets"][0]


def test_jax_restore_adopts_the_aligned_buffer(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    state = {
        "w": jnp.arange(100_000, dtype=jnp.float32),
        "odd": jnp.arange(7, dtype=jnp.int16),  # 14 bytes: breaks alignment for whatever follows it
        "v": jnp.full((300, 64), 2, dtype=jnp.int32),
        "h": jnp.ones(40_000, dtype=jnp.float16),
    }
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state, blocking=True)
        _, back = mgr.restore()
    base, header = _header(tmp_path / "c" / TENSORS.format(1))
    assert base % DATA_ALIGN == 0
    for name in ("w", "v", "h"):  # sizes that are multiples of 64 come first, so they start aligned
        assert header[name]["data_offsets"][0] % DATA_ALIGN == 0
    assert isinstance(back, dict)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and bool((back[key] == value).all())
    # Adopted, not copied: XLA reads the restore buffer itself.
    ptr = {k: back[k].unsafe_buffer_pointer() for k in ("w", "v", "h")}
    for k in ("v", "h"):
        assert ptr[k] - ptr["w"] == header[k]["data_offsets"][0] - header["w"]["data_offsets"][0]
    buf = host_buffer(8 << 20)  # page-aligned
    view = buf[64 : 64 + 400_000].view(np.float32)
    from berth.runtime.tree import _to_jax

    adopted = _to_jax(view)
    assert adopted.unsafe_buffer_pointer() == view.ctypes.data  # type: ignore[attr-defined]
    assert _to_jax(buf[8 : 8 + 400_000].view(np.float32)).unsafe_buffer_pointer() != buf.ctypes.data + 8  # type: ignore[attr-defined]


# -- mutable arrays: copied before save() returns ---------------------------------------------------


def test_numpy_mutation_right_after_save_never_reaches_the_checkpoint(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    big = rng.random(6 << 20)  # 48 MiB: copied in pieces on several threads
    base = rng.random((64, 1000))
    state = {"big": big, "small": rng.integers(0, 9, 1000), "view": base[::2, 3:900:3], "t": base.T}
    expected = {k: np.array(v, copy=True) for k, v in state.items()}
    with CheckpointManager(tmp_path / "c") as mgr:
        for step in (1, 2):  # a fresh staging buffer, then the reused one
            mgr.save(step, state)
            big[:] = -1.0  # the training step writes into the same memory at once
            base[:] = -2.0
            state["small"][:] = -3
            mgr.wait()
            _, back = mgr.restore(step=step)
            assert same(back, expected)
            big[:] = expected["big"]
            base[:] = np.array(expected["t"]).T
            state["small"][:] = expected["small"]


def test_numpy_mutated_by_another_thread_during_the_write_is_not_seen(tmp_path: Path) -> None:
    w = np.zeros(8 << 20, dtype=np.float32)
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            np.add(w, 1.0, out=w)

    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, {"w": w})
        thread = threading.Thread(target=train)
        thread.start()
        try:
            mgr.wait()
        finally:
            stop.set()
            thread.join()
        _, back = mgr.restore()
    assert isinstance(back, dict) and not back["w"].any()


def test_restore_faults_in_the_staging_memory_of_the_first_save(tmp_path: Path) -> None:
    state = {"w": np.random.default_rng(2).random(1 << 20), "n": 3}
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state, blocking=True)
    with CheckpointManager(tmp_path / "c") as mgr:
        _, back = mgr.restore()
        need = mgr._staging.size
        assert need >= (1 << 20) * 8
        reserved = mgr._staging._buf
        mgr.save(2, back)
        assert mgr._staging._buf is reserved  # the first save copied into the reserved memory
        mgr.reserve(need * 2)
        assert mgr._staging.size >= need * 2
        mgr.save(3, back)
        mgr.wait()
        assert mgr.restore(step=3)[0] == 3


# -- unusual input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("blocking", [False, True])
def test_views_strided_fortran_broadcast_and_0d_arrays_round_trip(tmp_path: Path, blocking: bool) -> None:
    base = np.arange(4000, dtype=np.float64).reshape(40, 100)
    state = {
        "slice": base[5:9],  # C-contiguous, not owned
        "strided": base[::3, 1::7],
        "reversed": base[::-1, ::-2],
        "fortran": np.asfortranarray(base[:10]),
        "broadcast": np.broadcast_to(np.arange(5.0), (1000, 5)),
        "column": base[:, 4],
        "zero_d": np.array(2.5, dtype=np.float32),
        "zero_d_int": np.array(7),
        "empty": np.zeros((0, 3), dtype=np.int32),
        "big_endian": np.arange(10, dtype=">i4"),
        "scalar": np.int16(-3),
    }
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state, blocking=blocking)
        _, back = mgr.restore()
    assert isinstance(back, dict)
    for key, value in state.items():
        got = back[key]
        assert np.array_equal(got, value), key
        assert got.shape == np.shape(value), key
        assert got.dtype.newbyteorder("=") == np.asarray(value).dtype.newbyteorder("="), key
    assert back["zero_d"].shape == () and isinstance(back["scalar"], np.int16)


def test_dtypes_that_safetensors_names_round_trip(tmp_path: Path) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(3)
    values = rng.standard_normal(257).astype(np.float32)
    state = {
        "bf16": values.astype(ml_dtypes.bfloat16),
        "f8e4m3": values.astype(ml_dtypes.float8_e4m3fn),
        "f8e5m2": values.astype(ml_dtypes.float8_e5m2),
        "f8e4m3fnuz": values.astype(ml_dtypes.float8_e4m3fnuz),
        "bool": values > 0,
        "c64": (values + 1j * values).astype(np.complex64),
        "u64": rng.integers(0, 1 << 63, 9, dtype=np.uint64),
    }
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state)
        _, back = mgr.restore()
    assert isinstance(back, dict)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].tobytes() == value.tobytes(), key
    torch_st = pytest.importorskip("safetensors.torch")
    theirs = torch_st.load_file(str(tmp_path / "c" / TENSORS.format(1)))
    assert theirs["bf16"].float().numpy().tobytes() == state["bf16"].astype(np.float32).tobytes()
    assert theirs["bool"].numpy().tolist() == state["bool"].tolist()


def test_jax_and_torch_narrow_dtypes_round_trip(tmp_path: Path) -> None:
    jnp = pytest.importorskip("jax.numpy")
    torch = pytest.importorskip("torch")
    state = {
        "jax_bf16": jnp.linspace(0, 1, 100, dtype=jnp.bfloat16),
        "jax_f8": jnp.linspace(0, 1, 100).astype(jnp.float8_e4m3fn),
        "jax_bool": jnp.arange(10) > 4,
        "jax_0d": jnp.float32(1.5) * jnp.ones(()),
        "torch_f8": torch.linspace(0, 1, 100).to(torch.float8_e5m2),
        "torch_bool": torch.arange(10) > 4,
        "torch_strided": torch.arange(100.0).reshape(10, 10).t()[::2],
    }
    with CheckpointManager(tmp_path / "c") as mgr:
        mgr.save(1, state)
        _, back = mgr.restore()
    assert isinstance(back, dict)
    for key, value in state.items():
        if key.startswith("torch"):
            assert back[key].dtype == value.dtype and torch.equal(back[key].float(), value.float()), key
        else:
            assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
            assert np.asarray(back[key]).tobytes() == np.asarray(value).tobytes(), key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([{"a": 1}, None], dtype=object), r"model/layers/1/w: dtype object cannot be stored"),
        (np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), r"model/layers/1/w: dtype structured cannot be stored"),
        (np.zeros(3, dtype=np.complex128), r"model/layers/1/w: dtype complex128 .*only complex64"),
        (np.array(["a", "b"]), r"model/layers/1/w: dtype str.* cannot be stored"),
    ],
)
def test_arrays_safetensors_cannot_hold_are_refused_with_their_path(
    tmp_path: Path, value: np.ndarray[Any, Any], message: str
) -> None:
    state = {"model": {"layers": [{"w": np.ones(2)}, {"w": value}]}}
    with CheckpointManager(tmp_path / "c") as mgr:
        for blocking in (False, True):
            with pytest.raises(TypeError, match=message):
                mgr.save(1, state, blocking=blocking)
        assert mgr.steps() == []


def test_int4_is_refused_with_its_path(tmp_path: Path) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    state = {"q": {"w": np.zeros(8, dtype=ml_dtypes.int4)}}
    with CheckpointManager(tmp_path / "c") as mgr, pytest.raises(TypeError, match=r"q/w: dtype int4 .*pack two"):
        mgr.save(1, state)
    jnp = pytest.importorskip("jax.numpy")
    with CheckpointManager(tmp_path / "d") as mgr, pytest.raises(TypeError, match=r"q/w: dtype int4"):
        mgr.save(1, {"q": {"w": jnp.zeros(8, dtype=jnp.int4)}})


def test_a_state_of_100k_tiny_leaves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = {f"g{j}": {f"w{i}": np.full(3, j * 1000 + i, dtype=np.int32) for i in range(1000)} for j in range(100)}
    times = {}
    with CheckpointManager(tmp_path / "c") as mgr:
        start = time.perf_counter()
        mgr.save(1, state)
        times["async stall"] = time.perf_counter() - start
        mgr.wait()
        times["async to commit"] = time.perf_counter() - start
        start = time.perf_counter()
        mgr.save(2, state, blocking=True)
        times["sync save"] = time.perf_counter() - start
        start = time.perf_counter()
        step, back = mgr.restore()
        times["restore"] = time.perf_counter() - start
    assert step == 2 and isinstance(back, dict)
    assert int(back["g99"]["w999"][0]) == 99_999 and same(back["g3"], state["g3"])
    with capsys.disabled():
        print("\n100,000 leaves: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
    assert all(v < 120 for v in times.values())


# -- restores into JAX: the file's pages, adopted --------------------------------------------------


def _mapped_files() -> dict[str, int]:
    """Path -> number of mappings of it in this process (``(deleted)`` marks unlinked files)."""
    found: dict[str, int] = {}
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            found[parts[5]] = found.get(parts[5], 0) + 1
    return found


def _mapping_of(address: int) -> str:
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= address < hi:
            return parts[5] if len(parts) == 6 else ""
    return ""


def test_jax_restore_adopts_the_files_pages_and_copies_mutable_leaves(tmp_path: Path) -> None:
    """A state with JAX arrays restores from a private mapping of the verified file: JAX adopts
    its pages (no fresh buffer, no copy); numpy leaves beside them are copied out, so updating
    them in place never pins the file; a donating step writes into its own copy, never the file."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    state = {"w": jnp.arange(3 << 20, dtype=jnp.float32), "m": jnp.ones((1024, 1024), jnp.float32)}
    state["np"] = np.arange(1 << 20, dtype=np.float32)  # 4 MiB, mutable
    root = tmp_path / "c"
    with CheckpointManager(root, keep_last=1) as mgr:
        mgr.save(1, state, blocking=True)
        _, back = mgr.restore()
        assert isinstance(back, dict)
        tensors = str(root / TENSORS.format(1))
        for key in ("w", "m"):
            assert isinstance(back[key], jax.Array) and bool((back[key] == state[key]).all()), key
            assert _mapping_of(back[key].unsafe_buffer_pointer()) == tensors, key  # the file itself
        assert _mapping_of(back["np"].ctypes.data) != tensors and back["np"].flags.writeable
        back["np"] += 1  # in place: the checkpoint does not change
        donate = jax.jit(lambda x: x * 2, donate_argnums=0)
        doubled = donate(back.pop("w"))
        assert bool((doubled == state["w"] * 2).all())
        _, again = mgr.restore()  # the file still verifies and holds the saved values
        assert isinstance(again, dict) and bool((again["w"] == state["w"]).all())
        assert np.array_equal(again["np"], state["np"])
        # Once the step is deleted and the arrays are gone, the file is released.
        mgr.save(2, {"x": np.zeros(3)}, blocking=True)
        assert not (root / "step-000000000001").exists()
        del back, again, doubled
        gc.collect()
        assert not [name for name in _mapped_files() if name.startswith(tensors)]


def test_jax_restore_from_a_mapping_still_falls_back_on_a_flipped_byte(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax")
    state = {"w": jax.numpy.arange(2 << 20, dtype=jax.numpy.float32)}
    root = tmp_path / "c"
    with CheckpointManager(root, keep_last=2) as mgr:
        mgr.save(1, state, blocking=True)
        mgr.save(2, state, blocking=True)
        path = root / TENSORS.format(2)
        with path.open("r+b") as f:
            f.seek(5 << 20)
            byte = f.read(1)
            f.seek(5 << 20)
            f.write(bytes([byte[0] ^ 0x10]))
        step, back = mgr.restore()
    assert step == 1 and isinstance(back, dict) and bool((back["w"] == state["w"]).all())
