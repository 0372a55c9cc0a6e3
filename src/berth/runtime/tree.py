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
from berth.runtime.safetensors_io import np_dtype, st_dtype

U8Array = np.ndarray[tuple[int], np.dtype[np.uint8]]

_TORCH_TO_ST = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8",
    "bool": "BOOL",
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


def _numpy_leaf(name: str, kind: str, arr: np.ndarray[Any, Any]) -> Leaf:
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    code = st_dtype(arr.dtype)

    def host() -> U8Array:
        return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)

    def copy_into(dst: U8Array) -> None:
        np.copyto(dst.view(arr.dtype).reshape(arr.shape), arr)

    return Leaf(name, kind, code, tuple(arr.shape), int(arr.nbytes), host, copy_into)


def _torch_leaf(name: str, tensor: Any) -> Leaf:
    torch = importlib.import_module("torch")  # loaded already: the state holds its tensors
    t = tensor.detach()
    dname = str(t.dtype).removeprefix("torch.")
    code = _TORCH_TO_ST.get(dname)
    if code is None:
        raise TypeError(f"{name}: torch dtype {dname} cannot be stored in a safetensors file")

    def host() -> U8Array:
        flat = t.to("cpu").contiguous().reshape(-1)
        return flat.view(torch.uint8).numpy()  # type: ignore[no-any-return]

    def copy_into(dst: U8Array) -> None:
        torch.from_numpy(dst).view(t.dtype).reshape(t.shape).copy_(t)

    return Leaf(name, "torch", code, tuple(t.shape), t.numel() * t.element_size(), host, copy_into)


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
        if isinstance(value, np.ndarray | np.generic):
            kind = "npscalar" if isinstance(value, np.generic) else "numpy"
            leaf = _numpy_leaf(self._name(path), kind, np.asarray(value))
        elif _is_torch(value):
            leaf = _torch_leaf(self._name(path), value)
        elif _is_jax(value):
            leaf = _numpy_leaf(self._name(path), "jax", np.asarray(value))
        else:
            raise TypeError(f"{'/'.join(path) or '<root>'}: cannot checkpoint a {type(value).__name__}")
        self.leaves.append(leaf)
        return {"x": leaf.name, "k": leaf.kind}


def flatten(state: object) -> tuple[dict[str, Any], list[Leaf]]:
    """The JSON skeleton of ``state`` and its tensors, in the order they were found."""
    flat = _Flattener()
    skeleton = flat.node(state, ())
    return skeleton, flat.leaves


def _restore_tensor(kind: str, dtype: str, shape: tuple[int, ...], raw: U8Array) -> object:
    if kind == "torch":
        torch = importlib.import_module("torch")
        tdtype = getattr(torch, next(k for k, v in _TORCH_TO_ST.items() if v == dtype))
        return torch.from_numpy(raw).view(tdtype).reshape(shape)
    arr = raw.view(np_dtype(dtype)).reshape(shape)
    if kind == "npscalar":
        return arr[()]
    if kind == "jax":
        return importlib.import_module("jax.numpy").asarray(arr)
    return arr


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
