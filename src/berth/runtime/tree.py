"""Split a training state into tensors and a small JSON skeleton, and put it back together.

Framework-agnostic on purpose: numpy always, torch and JAX only when the caller's state
holds their arrays (we never import them otherwise, so a numpy-only trainer does not pay
for them). Tensors become safetensors entries; everything else (scalars, strings, bytes,
lists, tuples, nested dicts with str or int keys) goes in the skeleton.
"""

from __future__ import annotations

import base64
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from berth.runtime.manifest import CorruptCheckpoint
from berth.runtime.safetensors_io import mapped, np_dtype, st_dtype

U8Array = np.ndarray[tuple[int], np.dtype[np.uint8]]

_TORCH_TO_ST = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8",
    "bool": "BOOL", "float8_e4m3fnuz": "F8_E4M3FNUZ", "float8_e5m2fnuz": "F8_E5M2FNUZ", "complex64": "C64",
}  # fmt: skip


@dataclass
class Leaf:
    """A tensor found in the state: how big it is, and how to get its bytes onto the host."""

    name: str
    kind: str  # numpy | npscalar | torch | jax
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    host: Callable[[], U8Array]
    """Flat little-endian bytes on the host; zero-copy for contiguous CPU arrays."""
    copy_into: Callable[[U8Array], None]
    """Copy the tensor into a preallocated byte slice (the async snapshot)."""
    zero_copy: bool = False
    """``host()`` is a snapshot already: bytes nobody can change (an immutable JAX array's buffer,
    pinned by our view of it, or a private host copy); an async save needs no copy of its own."""
    flat: U8Array | None = None
    """The source bytes when they are contiguous on the host, so a big copy can be split over threads."""


def _numpy_leaf(name: str, kind: str, arr: np.ndarray[Any, Any], *, zero_copy: bool = False) -> Leaf:
    code = st_dtype(arr.dtype)  # refuses object, structured, int4, ... before anything else
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    flat = arr.reshape(-1).view(np.uint8) if arr.flags.c_contiguous else None

    def host() -> U8Array:
        if flat is not None:
            return flat
        return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)

    def copy_into(dst: U8Array) -> None:
        if flat is not None:
            np.copyto(dst, flat)
        else:  # views with strides, Fortran order, broadcasts: gathered into C order
            np.copyto(dst.view(arr.dtype).reshape(arr.shape), arr)

    return Leaf(name, kind, code, tuple(arr.shape), int(arr.nbytes), host, copy_into, zero_copy, flat)


def _jax_leaf(name: str, value: Any) -> Leaf:
    # On CPU this is a read-only view of the array's own buffer: JAX arrays are immutable, and
    # while the view lives XLA cannot reuse the buffer (a donation copies instead), so holding
    # it is a consistent snapshot at no cost. On an accelerator it is a host copy, ours alone.
    if value.is_deleted():
        raise TypeError("the JAX array was deleted (donated to a computation) before save()")
    return _numpy_leaf(name, "jax", np.asarray(value), zero_copy=True)


def _torch_leaf(name: str, tensor: Any) -> Leaf:
    torch = importlib.import_module("torch")  # loaded already: the state holds its tensors
    t = tensor.detach()
    dname = str(t.dtype).removeprefix("torch.")
    code = _TORCH_TO_ST.get(dname)
    if code is None:
        raise TypeError(f"torch dtype {dname} cannot be stored in a safetensors file")
    flat = None
    if t.device.type == "cpu" and t.is_contiguous():
        flat = t.reshape(-1).view(torch.uint8).numpy()

    def host() -> U8Array:
        if flat is not None:
            return flat  # type: ignore[no-any-return]
        return t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()  # type: ignore[no-any-return]

    def copy_into(dst: U8Array) -> None:
        torch.from_numpy(dst).view(t.dtype).reshape(t.shape).copy_(t)

    return Leaf(name, "torch", code, tuple(t.shape), t.numel() * t.element_size(), host, copy_into, False, flat)


def _is_torch(value: object) -> bool:
    return "torch" in sys.modules and type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_jax(value: object) -> bool:
    if "jax" not in sys.modules:
        return False
    return isinstance(value, importlib.import_module("jax").Array)


class _Flattener:
    def __init__(self) -> None:
        self.leaves: list[Leaf] = []
        self._names: set[str] = set()

    def _name(self, path: tuple[str, ...]) -> str:
        base = "/".join(path) or "tensor"
        name, n = base, 1
        while name in self._names:
            name, n = f"{base}#{n}", n + 1
        self._names.add(name)
        return name

    def node(self, value: object, path: tuple[str, ...]) -> dict[str, Any]:
        if value is None or isinstance(value, bool | int | float | str):
            return {"v": value}
        if isinstance(value, bytes | bytearray | memoryview):
            return {"b": base64.b64encode(bytes(value)).decode()}
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                if not isinstance(key, str | int) or isinstance(key, bool):
                    raise TypeError(f"{'/'.join(path) or '<root>'}: dict key {key!r} is not a str or int")
                items.append([key, self.node(item, (*path, str(key)))])
            return {"d": items}
        if isinstance(value, list | tuple):
            tag = "l" if isinstance(value, list) else "t"
            return {tag: [self.node(item, (*path, str(i))) for i, item in enumerate(value)]}
        where = "/".join(path) or "<root>"
        try:
            if isinstance(value, np.ndarray | np.generic):
                kind = "npscalar" if isinstance(value, np.generic) else "numpy"
                leaf = _numpy_leaf(self._name(path), kind, np.asarray(value))
            elif _is_torch(value):
                leaf = _torch_leaf(self._name(path), value)
            elif _is_jax(value):
                leaf = _jax_leaf(self._name(path), value)
            else:
                raise TypeError(f"cannot checkpoint a {type(value).__name__}")
        except TypeError as err:
            raise TypeError(f"{where}: {err}") from None
        self.leaves.append(leaf)
        return {"x": leaf.name, "k": leaf.kind}


def flatten(state: object) -> tuple[dict[str, Any], list[Leaf]]:
    """The JSON skeleton of ``state`` and its tensors, in the order they were found."""
    flat = _Flattener()
    skeleton = flat.node(state, ())
    return skeleton, flat.leaves


def _restore_tensor(kind: str, dtype: str, shape: tuple[int, ...], raw: U8Array) -> object:
    if kind != "jax" and mapped(raw):
        # A mutable array must not live on a mapped checkpoint file: a trainer updating it in
        # place would keep that step's blocks allocated long after retention deleted it.
        raw = raw.copy()
    if kind == "torch":
        torch = importlib.import_module("torch")
        tdtype = getattr(torch, next(k for k, v in _TORCH_TO_ST.items() if v == dtype))
        return torch.from_numpy(raw).view(tdtype).reshape(shape)
    arr = raw.view(np_dtype(dtype)).reshape(shape)
    if kind == "npscalar":
        return arr[()]
    if kind == "jax":
        return _to_jax(arr)
    return arr


_DLPACK_DTYPES = frozenset(
    ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
)
ADOPT_MIN = 64 << 10
"""Smaller arrays are copied into JAX (cheap); bigger aligned ones are adopted without a copy."""


def _to_jax(arr: np.ndarray[Any, Any]) -> object:
    """A JAX array of ``arr``: on CPU it adopts the restore buffer through DLPack (no copy) when
    the bytes are 64-byte aligned and the dtype is one DLPack carries; otherwise a copy."""
    jax = importlib.import_module("jax")
    adoptable = (
        arr.nbytes >= ADOPT_MIN
        and arr.ctypes.data % 64 == 0
        and arr.dtype.name in _DLPACK_DTYPES
        and jax.default_backend() == "cpu"
    )
    if adoptable:
        try:
            adopted = importlib.import_module("jax.dlpack").from_dlpack(arr)
            if adopted.dtype == arr.dtype and adopted.shape == arr.shape:
                return adopted
        except (TypeError, ValueError, RuntimeError, BufferError):
            pass
    return importlib.import_module("jax.numpy").asarray(arr)


def tensor_kinds(skeleton: dict[str, Any]) -> dict[str, str]:
    """Leaf name -> kind (numpy, npscalar, torch, jax) of every tensor in a skeleton."""
    kinds: dict[str, str] = {}
    stack: list[Any] = [skeleton]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "x" in node:
            kinds[str(node["x"])] = str(node.get("k", "numpy"))
        elif "d" in node:
            stack.extend(item for _, item in node["d"])
        else:
            stack.extend(node.get("l") or node.get("t") or [])
    return kinds


def unflatten(skeleton: dict[str, Any], tensors: dict[str, tuple[str, tuple[int, ...], U8Array]]) -> object:
    """Rebuild the state; ``tensors`` maps a leaf name to (dtype code, shape, raw bytes)."""

    def build(node: dict[str, Any]) -> object:
        if "v" in node:
            return node["v"]
        if "b" in node:
            return base64.b64decode(node["b"])
        if "d" in node:
            return {key: build(item) for key, item in node["d"]}
        if "l" in node:
            return [build(item) for item in node["l"]]
        if "t" in node:
            return tuple(build(item) for item in node["t"])
        if "x" in node:
            if node["x"] not in tensors:
                raise CorruptCheckpoint(f"tensor {node['x']!r} is missing from the shard")
            dtype, shape, raw = tensors[node["x"]]
            return _restore_tensor(str(node["k"]), dtype, shape, raw)
        raise CorruptCheckpoint(f"unknown node in checkpoint metadata: {sorted(node)}")

    try:
        return build(skeleton)
    except (TypeError, ValueError, KeyError) as err:
        raise CorruptCheckpoint(f"checkpoint metadata does not match its tensors ({err})") from err
