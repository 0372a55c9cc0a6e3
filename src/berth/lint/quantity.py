"""Kubernetes resource quantities (``100Gi``, ``1.5T``, ``500m``, ``1e3``) as numbers."""

from __future__ import annotations

import re
from typing import Any

_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: Any) -> float | None:
    """The quantity as a float, or None when it is not a valid Kubernetes quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number = float(match[1])
    if match[2]:
        return number * 10.0 ** int(match[2][1:])
    return number * _SUFFIX[match[3] or ""]
