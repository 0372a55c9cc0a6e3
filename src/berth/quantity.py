"""Kubernetes resource quantities (``100Gi``, ``500m``, ``1e3``), parsed exactly.

The API server rejects what this rejects, so a typo like ``100GB`` is caught at
load time with a hint instead of at ``kubectl apply``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_COMMON_TYPOS = {"KB": "k or Ki", "MB": "M or Mi", "GB": "G or Gi", "TB": "T or Ti", "PB": "P or Pi",
                 "KiB": "Ki", "MiB": "Mi", "GiB": "Gi", "TiB": "Ti", "K": "k or Ki", "g": "G or Gi"}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message says what to write instead."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the exact value of a quantity; raise QuantityError with a fix-it hint."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = value.strip()
    match = _RE.match(text)
    if not match:
        suffix = re.sub(r"^[+-]?[0-9.]+", "", text)
        if suffix in _COMMON_TYPOS:
            raise QuantityError(
                f"{value!r} is not a Kubernetes quantity: use the suffix {_COMMON_TYPOS[suffix]} "
                f"(e.g. {text[: len(text) - len(suffix)]}{_COMMON_TYPOS[suffix].split()[-1]})"
            )
        raise QuantityError(
            f"{value!r} is not a Kubernetes quantity (examples: 500m, 4, 16Gi, 1Ti, 1e3)"
        )
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as err:  # pragma: no cover - the regex admits only valid decimals
        raise QuantityError(f"{value!r} is not a number") from err
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if len(suffix) > 1 and suffix[0] in ("e", "E"):  # an exponent; a lone "E" is the exa suffix
        return base * (Decimal(10) ** int(suffix[1:]))
    return base * _DECIMAL[suffix]


def format_bytes(value: Decimal | int) -> str:
    """Human-readable binary size for messages (``1.5Ti``)."""
    amount = Decimal(value)
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        scale = _BINARY[unit]
        if amount >= scale:
            shown = (amount / scale).quantize(Decimal("0.1")).normalize()
            return f"{shown}{unit}"
    return f"{amount.normalize()}"
