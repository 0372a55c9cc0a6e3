"""Our streaming safetensors writer and reader against the reference `safetensors` package."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors.numpy import load_file, save_file

from berth.runtime.manifest import CorruptCheckpoint
from berth.runtime.safetensors_io import (
    TensorBytes,
    order_key,
    parse_safetensors,
    read_verified,
    st_dtype,
    write_safetensors,
)

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.bool_]


def _write(path: Path, arrays: dict[str, np.ndarray], chunk_size: int = 1 << 20):  # type: ignore[no-untyped-def]
    tensors = [
        TensorBytes(name, st_dtype(a.dtype), a.shape, np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
        for name, a in arrays.items()
    ]
    tensors.sort(key=lambda t: order_key(t.dtype, t.name, t.nbytes))
    return write_safetensors(str(path), tensors, {"producer": "test"}, chunk_size=chunk_size)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh/._", min_size=1, max_size=12),
        st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3))),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([7, 64, 4096]),
)
def test_reference_library_reads_what_we_write(tmp_path_factory: pytest.TempPathFactory, arrays, chunk) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    entry = _write(path, arrays, chunk)
    theirs = load_file(str(path))
    assert theirs.keys() == arrays.keys()
    for name, a in arrays.items():
        assert theirs[name].dtype == a.dtype and theirs[name].shape == a.shape
        assert theirs[name].tobytes() == a.tobytes()
    ours, meta = parse_safetensors(read_verified(str(path), entry), str(path))
    assert meta == {"producer": "test"}
    for name, a in arrays.items():
        code, shape, raw = ours[name]
        assert (code, shape, raw.tobytes()) == (st_dtype(a.dtype), a.shape, a.tobytes())


def test_we_read_what_the_reference_library_writes(tmp_path: Path) -> None:
    arrays = {"a": np.arange(10, dtype=np.float32), "b": np.ones((2, 3), dtype=np.int16)}
    save_file(arrays, str(tmp_path / "ref.safetensors"))
    raw = np.fromfile(tmp_path / "ref.safetensors", dtype=np.uint8)
    tensors, _ = parse_safetensors(raw)
    assert tensors["b"][1] == (2, 3) and tensors["b"][2].view(np.int16).sum() == 6


def test_tensors_are_aligned_for_zero_copy_views(tmp_path: Path) -> None:
    arrays = {"i8": np.ones(3, np.int8), "f64": np.ones(5), "f16": np.ones(3, np.float16)}
    arrays["f32"] = np.ones(1, np.float32)
    entry = _write(tmp_path / "t.safetensors", arrays)
    tensors, _ = parse_safetensors(read_verified(str(tmp_path / "t.safetensors"), entry))
    for code, _, raw in tensors.values():
        itemsize = {"F64": 8, "F32": 4, "F16": 2, "I8": 1}[code]
        assert raw.ctypes.data % itemsize == 0


def test_a_flipped_byte_names_the_file_and_chunk(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    entry = _write(path, {"x": np.zeros(10_000, np.float32)}, chunk_size=4096)
    with open(path, "r+b") as f:
        f.seek(3 * 4096 + 17)
        f.write(b"\x01")
    with pytest.raises(CorruptCheckpoint) as err:
        read_verified(str(path), entry)
    assert err.value.chunk == 3 and err.value.path == str(path)
    assert "chunk 3" in err.value.message


def test_truncated_file_is_rejected_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    entry = _write(path, {"x": np.zeros(1000, np.float32)})
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(CorruptCheckpoint, match="size 100"):
        read_verified(str(path), entry)


def test_unsupported_dtype_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="complex128"):
        st_dtype(np.dtype(np.complex128))


@pytest.mark.parametrize("where", ["disk", "tmpfs"])
def test_big_files_read_back_exactly_with_direct_io(tmp_path: Path, where: str) -> None:
    """Files of 4 MiB and more take the O_DIRECT path (buffered where the filesystem refuses it)."""
    base = tmp_path if where == "disk" else Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        arrays = {
            "big": np.random.default_rng(3).random(5_000_003, dtype=np.float32),
            "odd": np.arange(7, dtype=np.int8),
        }
        path = base / "t.safetensors"
        entry = _write(path, arrays, chunk_size=1 << 20)
        assert entry.size % 4096 != 0  # the tail is a partial block
        tensors, _ = parse_safetensors(read_verified(str(path), entry))
        assert tensors["big"][2].tobytes() == arrays["big"].tobytes()
        assert tensors["odd"][2].tobytes() == arrays["odd"].tobytes()
        with open(path, "r+b") as f:
            f.seek(entry.size - 3)
            f.write(b"\xff")
        with pytest.raises(CorruptCheckpoint) as err:
            read_verified(str(path), entry)
        assert err.value.chunk == len(entry.crc32) - 1
    finally:
        if where == "tmpfs":
            shutil.rmtree(base)


def test_gathered_direct_write_matches_the_buffered_stream(tmp_path: Path) -> None:
    """O_DIRECT through bounce buffers: same bytes and same chunk CRCs as the buffered writer."""
    from berth.runtime.safetensors_io import write_gathered, write_stream

    rng = np.random.default_rng(11)
    blobs = [memoryview(rng.bytes(n)) for n in (8, 5 << 20, 3, 0, 17 << 20, 4095, 1 << 20, 77)]
    blobs.append(memoryview(np.arange(1000, dtype=np.float64)[::3].copy()))  # a typed, non-byte memoryview
    ours = write_gathered(str(tmp_path / "direct"), blobs, chunk_size=4 << 20)
    ref = write_stream(str(tmp_path / "stream"), blobs, chunk_size=4 << 20)
    assert (tmp_path / "direct").read_bytes() == (tmp_path / "stream").read_bytes()
    assert (ours.size, ours.crc32) == (ref.size, ref.crc32)
