"""Kubernetes quantities (``100Gi``, ``500m``, ``1e3``) and Go durations (``1h30m``): the only parsers.

The API server rejects what this rejects, so a typo like ``100GB`` is caught at
load time with a hint instead of at ``kubectl apply``; the spec, the linter and the CLI
all read sizes and durations through here, so they can never disagree. Leaf module.
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
_COMMON_TYPOS = {
    "KB": "k or Ki",
    "MB": "M or Mi",
    "GB": "G or Gi",
    "TB": "T or Ti",
    "PB": "P or Pi",
    "KiB": "Ki",
    "MiB": "Mi",
    "GiB": "Gi",
    "TiB": "Ti",
    "K": "k or Ki",
    "g": "G or Gi",
}


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
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 4, 16Gi, 1Ti, 1e3)")
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


def quantity_or_none(value: object) -> float | None:
    """The quantity as a float, or None when it is not one: for linting others' manifests, where
    an invalid quantity is another rule's finding, not an exception."""
    if not isinstance(value, str | int | float):
        return None
    try:
        return float(parse_quantity(value))
    except QuantityError:
        return None


# Go's time.ParseDuration units, which Kubernetes and Velero fields (ttl, scrape intervals) use.
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def is_duration(text: str) -> bool:
    """Whether ``text`` is a Go duration with units (``720h``, ``1h30m``, ``90s``); ``300`` is not."""
    return bool(_DURATION.match(text))


def parse_duration(text: str, *, bare_seconds: bool = False) -> float:
    """Seconds in a Go duration; with ``bare_seconds``, a plain number is seconds too (CLI flags)."""
    if bare_seconds and _SECONDS.match(text):
        return float(text)
    if not is_duration(text):
        example = "300, " if bare_seconds else ""
        raise QuantityError(f"{text!r} is not a duration: use {example}90s, 5m, 1h30m or 720h")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def format_age(seconds: float | None) -> str:
    """kubectl's AGE column: the largest whole unit (``3d``, ``5h``, ``12m``, ``40s``); ``-`` unknown."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= span:
            return f"{whole // span}{unit}"
    return f"{whole}s"
