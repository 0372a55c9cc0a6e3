"""Used space of claims: the kubelet's volume stats, one Summary API call per node.

The kubelet measures every mounted volume of its pods (``statfs`` of the mount for block and
``local`` volumes, ``du`` for emptyDir) and serves the figures at
``/api/v1/nodes/<node>/proxy/stats/summary``: the same numbers it exports as the
``kubelet_volume_stats_*`` metrics. One GET per node that runs a pod of the cluster gives every
claim mounted there, so ``berth status`` costs as many calls for 3 replicas on one node as for 300.

What cannot be measured is said, not shown as zero:

- a kwok node (annotation ``kwok.x-k8s.io/node``) has no kubelet, so no stats exist;
- a volume plugin without metrics (``hostPath``: its plugin returns ``MetricsNil``) is absent
  from the summary even on a real node;
- ``get nodes/proxy`` is an optional, broad permission (docs/rbac.md): without it one note
  names what is missing and the rest of status is unaffected.

The figures are the filesystem's: a ``local`` or ``hostPath`` directory on a larger disk
reports that disk's size and usage (the kubelet cannot do otherwise), which :attr:`Usage.shared_fs`
flags by comparing the kubelet's capacity with the claim's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from berth.contract import KWOK_NODE_ANNOTATION

if TYPE_CHECKING:
    from berth.kube.client import Kube

FULL_RATIO = 0.85  # a claim above this share of its bytes or inodes is flagged in status
STATS_TIMEOUT_S = 10.0  # one node's summary; a dead kubelet must not stall status
PARALLEL = 8  # concurrent node calls


@dataclass(frozen=True)
class Usage:
    """One claim's volume as the kubelet measured it (bytes and inodes, any may be unknown)."""

    used_bytes: int | None
    capacity_bytes: int | None
    available_bytes: int | None
    inodes: int | None
    inodes_used: int | None
    node: str
    time: str | None = None

    @property
    def used_ratio(self) -> float | None:
        """Used share of the bytes: used / capacity, as the ``kubelet_volume_stats`` alerts compute it."""
        return _ratio(self.used_bytes, self.capacity_bytes)

    @property
    def inodes_ratio(self) -> float | None:
        """Used share of the inodes (None where the filesystem reports none, e.g. some FUSE mounts)."""
        return _ratio(self.inodes_used, self.inodes)

    @property
    def full(self) -> bool:
        """Above :data:`FULL_RATIO` in bytes or in inodes."""
        return any(r is not None and r > FULL_RATIO for r in (self.used_ratio, self.inodes_ratio))

    def shared_fs(self, claim_capacity: int | None) -> bool:
        """The kubelet's capacity is over twice the claim's: a directory on a larger filesystem."""
        return bool(claim_capacity and self.capacity_bytes and self.capacity_bytes > 2 * claim_capacity)

    def to_json(self) -> dict[str, Any]:
        """``usage`` of a claim in ``berth status -o json``."""
        return {
            "usedBytes": self.used_bytes,
            "capacityBytes": self.capacity_bytes,
            "availableBytes": self.available_bytes,
            "inodes": self.inodes,
            "inodesUsed": self.inodes_used,
            "usedRatio": _round(self.used_ratio),
            "inodesUsedRatio": _round(self.inodes_ratio),
            "full": self.full,
            "node": self.node,
            "time": self.time,
        }


def _ratio(part: int | None, whole: int | None) -> float | None:
    return part / whole if part is not None and whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


@dataclass
class Stats:
    """What the nodes said: usage per (namespace, claim), the nodes asked and those that answered, notes."""

    usage: dict[tuple[str, str], Usage]
    asked: list[str]
    kwok: list[str]
    notes: list[str]
    answered: set[str] = field(default_factory=set)


def parse_summary(node: str, summary: dict[str, Any]) -> dict[tuple[str, str], Usage]:
    """The claims in one node's ``stats/summary`` (``pods[].volume[].pvcRef``); other volumes are skipped."""
    out: dict[tuple[str, str], Usage] = {}
    for pod in summary.get("pods") or []:
        for vol in pod.get("volume") or []:
            ref = vol.get("pvcRef") or {}
            if not ref.get("name") or not ref.get("namespace"):
                continue
            out[(str(ref["namespace"]), str(ref["name"]))] = Usage(
                used_bytes=_int(vol.get("usedBytes")),
                capacity_bytes=_int(vol.get("capacityBytes")),
                available_bytes=_int(vol.get("availableBytes")),
                inodes=_int(vol.get("inodes")),
                inodes_used=_int(vol.get("inodesUsed")),
                node=node,
                time=vol.get("time"),
            )
    return out


_FORBIDDEN_USER = re.compile(r'User "([^"]+)" cannot get resource "nodes/proxy"')


def forbidden_note(body: str) -> str:
    """The one line status prints when ``get nodes/proxy`` is denied (BODY: the API server's Status)."""
    m = _FORBIDDEN_USER.search(_message(body))
    who = f'user "{m.group(1)}"' if m else "this user"
    return (
        f"used space unknown: {who} lacks get on nodes/proxy (the kubelet's volume stats; an optional, "
        "broad permission: docs/rbac.md#used-space); everything else above is unaffected"
    )


def is_kwok(annotations: dict[str, str] | None) -> bool:
    """A kwok-simulated node: no kubelet behind it, so no stats."""
    return KWOK_NODE_ANNOTATION in (annotations or {})


Getter = Callable[[str], tuple[int, str]]  # node → (HTTP status, body)


def collect(nodes: Iterable[str], kwok: set[str], get: Getter) -> Stats:
    """Ask each real node in NODES once (concurrently) through GET; kwok nodes are listed, not asked
    (status names the claims there, :attr:`berth.kube.status.ClaimRow.usage_unknown`).

    A 403 stops at one note (the permission is cluster-wide, every node would answer the same);
    another failure is a note naming the node, and the claims there stay unknown.
    """
    import json
    from concurrent.futures import ThreadPoolExecutor

    wanted = sorted(set(nodes))
    asked = [n for n in wanted if n not in kwok]
    stats = Stats({}, asked, [n for n in wanted if n in kwok], [])
    if not asked:
        return stats
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(asked))) as pool:
        answers = list(pool.map(get, asked))
    failed: list[str] = []
    for node, (code, body) in zip(asked, answers, strict=True):
        if code == 403:
            stats.notes.append(forbidden_note(body))
            return Stats({}, asked, stats.kwok, stats.notes)
        if code != 200:
            failed.append(f"{node} (HTTP {code}: {_message(body)})" if code else f"{node} ({body})")
            continue
        try:
            stats.usage.update(parse_summary(node, json.loads(body)))
            stats.answered.add(node)
        except (ValueError, AttributeError, TypeError):
            failed.append(f"{node} (not a stats summary)")
    if failed:
        stats.notes.append(f"used space unknown for claims on {'; '.join(failed)}")
    return stats


def _message(body: str) -> str:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:200]
    return str(data.get("message") or "")[:200] if isinstance(data, dict) else ""


def getter(kube: Kube) -> Getter:
    """One node's summary through the API server's node proxy: a single try with a short timeout.

    No retries: a node whose kubelet is down should cost one timeout in status, not the
    30 s retry budget of object reads.
    """
    import httpx2

    def get(node: str) -> tuple[int, str]:
        try:
            resp = kube.http.get(f"/api/v1/nodes/{node}/proxy/stats/summary", timeout=STATS_TIMEOUT_S)
        except httpx2.HTTPError as err:
            return 0, f"{type(err).__name__}: {err}"[:200]
        return resp.status_code, resp.text

    return get
