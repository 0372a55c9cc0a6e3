"""Which PVC belongs to which replica: the StatefulSet controller names them ``<template>-<sts>-<ordinal>``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimRef:
    """A per-replica claim: its volumeClaimTemplate and the pod ordinal it was made for."""

    template: str
    ordinal: int


def parse_claim_name(name: str, statefulset: str, templates: Iterable[str] = ()) -> ClaimRef | None:
    """Template and ordinal of a claim named by the controller, None for any other claim.

    With the StatefulSet's template names the match is exact (names may contain dashes);
    without them (the StatefulSet is gone) the longest template prefix that fits is used.
    """
    for template in sorted(templates, key=len, reverse=True):
        prefix = f"{template}-{statefulset}-"
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest.isdigit() and (rest == "0" or not rest.startswith("0")):
            return ClaimRef(template, int(rest))
    if templates:
        return None
    pattern = rf"(?P<template>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-{re.escape(statefulset)}-(?P<ordinal>0|[1-9][0-9]*)"
    match = re.fullmatch(pattern, name)
    return ClaimRef(match["template"], int(match["ordinal"])) if match else None
