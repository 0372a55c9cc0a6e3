"""Used space in `berth status` without a cluster: the kubelet's Summary API parsed, nodes asked once, reasons.

The summaries here have the shape the kubelet serves at ``/api/v1/nodes/<node>/proxy/stats/summary``
(``pods[].volume[]`` with ``pvcRef``); the real-pods test (test_volume_usage_in_pod.py) reads a real
kubelet's. The node getter is a plain function, so which nodes are asked, and how often, is counted.
"""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from berth.cli.views import binary_size, print_state
from berth.kube.status import Fetched, classify
from berth.kube.volumestats import FULL_RATIO, collect, forbidden_note, parse_summary

from .test_status_units import NOW, _claim, _pod, _sts

GI = 1 << 30


def _volume(claim: str | None, used: int, capacity: int, inodes: int = 1000, inodes_used: int = 10) -> dict[str, Any]:
    vol: dict[str, Any] = {
        "time": "2025-01-02T11:59:50Z",
        "availableBytes": capacity - used,
        "capacityBytes": capacity,
        "usedBytes": used,
        "inodesFree": inodes - inodes_used,
        "inodes": inodes,
        "inodesUsed": inodes_used,
        "name": "vol",
    }
    if claim:
        vol["pvcRef"] = {"name": claim, "namespace": "ns"}
    return vol


def _summary(*pods: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "node": {"nodeName": "n"},
            "pods": [
                {"podRef": {"name": f"p{i}", "namespace": "ns", "uid": str(i)}, "volume": vols}
                for i, vols in enumerate(pods)
            ],
        }
    )


def test_parse_summary_keeps_claims_and_skips_other_volumes() -> None:
    summary = json.loads(_summary([_volume("ckpt-t-0", 3 * GI, 10 * GI), _volume(None, 5, 10)]))
    got = parse_summary("node-0", summary)
    assert list(got) == [("ns", "ckpt-t-0")]
    usage = got[("ns", "ckpt-t-0")]
    assert (usage.used_bytes, usage.capacity_bytes, usage.inodes, usage.inodes_used) == (3 * GI, 10 * GI, 1000, 10)
    assert usage.used_ratio == 0.3 and not usage.full and usage.node == "node-0"


def test_full_above_85_percent_of_bytes_or_inodes() -> None:
    usage = parse_summary("n", json.loads(_summary([_volume("a", 86, 100), _volume("b", 85, 100, 100, 86)])))
    assert usage[("ns", "a")].full and usage[("ns", "b")].full
    just_under = parse_summary("n", json.loads(_summary([_volume("c", 85, 100, 100, 85)])))[("ns", "c")]
    assert FULL_RATIO == 0.85 and not just_under.full


def test_one_call_per_real_node_none_for_kwok() -> None:
    asked: list[str] = []

    def get(node: str) -> tuple[int, str]:
        asked.append(node)
        return 200, _summary([_volume(f"ckpt-{node}", 1, 10)])

    # 300 pods over two real nodes and a kwok node: two calls.
    stats = collect([f"node-{i % 3}" for i in range(300)], {"node-2"}, get)
    assert sorted(asked) == ["node-0", "node-1"]
    assert stats.kwok == ["node-2"] and stats.answered == {"node-0", "node-1"} and not stats.notes
    assert set(stats.usage) == {("ns", "ckpt-node-0"), ("ns", "ckpt-node-1")}


def test_forbidden_is_one_line_naming_the_user_and_the_permission() -> None:
    body = json.dumps(
        {
            "kind": "Status",
            "message": 'nodes "node-0" is forbidden: User "system:serviceaccount:ml:trainer" cannot get resource '
            '"nodes/proxy" in API group "" at the cluster scope',
            "code": 403,
        }
    )
    stats = collect(["node-0", "node-1"], set(), lambda node: (403, body))
    assert stats.usage == {}
    assert stats.notes == [forbidden_note(body)]
    assert stats.notes[0].startswith('used space unknown: user "system:serviceaccount:ml:trainer" lacks get on')
    assert "nodes/proxy" in stats.notes[0] and "docs/rbac.md" in stats.notes[0]


def test_a_failing_node_is_named_and_the_others_still_count() -> None:
    def get(node: str) -> tuple[int, str]:
        if node == "node-1":
            return 0, "ConnectTimeout: timed out"
        return 200, _summary([_volume("ckpt-t-0", 1, 10)])

    stats = collect(["node-0", "node-1"], set(), get)
    assert set(stats.usage) == {("ns", "ckpt-t-0")}
    assert stats.notes == ["used space unknown for claims on node-1 (ConnectTimeout: timed out)"]


def _state(usage: dict[tuple[str, str], Any], *, kwok: set[str], answered: set[str]) -> Any:
    fetched = Fetched(
        _sts(),
        [_pod(0), _pod(1)],
        [_claim("ckpt-t-0"), _claim("ckpt-t-1"), _claim("ckpt-t-5"), _claim("dataset")],
        {},
        [],
        usage,
        kwok,
        answered,
    )
    return classify("t", "ns", fetched, now=NOW)


def test_status_attaches_usage_and_says_why_there_is_none() -> None:
    usage = parse_summary(
        "node-0", json.loads(_summary([_volume("ckpt-t-0", 900 << 20, GI), _volume("dataset", 1, 2)]))
    )
    state = _state(usage, kwok={"node-1"}, answered={"node-0"})
    rows = {c.name: c for c in [*state.claims, *state.shared]}
    assert rows["ckpt-t-0"].usage is not None and rows["ckpt-t-0"].usage.full
    assert rows["ckpt-t-1"].usage is None and rows["ckpt-t-1"].usage_unknown == "kwok node: no kubelet, no stats"
    assert rows["ckpt-t-5"].usage_unknown == "not mounted by a running pod"
    # dataset is mounted on node-0 (answered, stats) and node-1 (kwok): node-0's figures are the claim's.
    assert rows["dataset"].usage is not None and rows["dataset"].usage_unknown is None
    doc = rows["ckpt-t-0"].to_json()
    assert doc["usage"]["usedBytes"] == 900 << 20 and doc["usage"]["full"] is True
    assert doc["usage"]["usedRatio"] == round((900 << 20) / GI, 4) and doc["usage"]["sharedFilesystem"] is False
    assert rows["ckpt-t-1"].to_json()["usage"] is None
    assert rows["ckpt-t-1"].to_json()["usageUnknown"] == "kwok node: no kubelet, no stats"


def test_no_stats_from_an_answering_kubelet_and_a_larger_filesystem_are_said() -> None:
    usage = parse_summary("node-0", json.loads(_summary([_volume("ckpt-t-0", 40 * GI, 250 * GI)])))
    state = _state(usage, kwok=set(), answered={"node-0", "node-1"})
    rows = {c.name: c for c in state.claims}
    assert rows["ckpt-t-0"].shared_fs  # 250Gi reported for a 1Gi claim: a directory on the host's disk
    assert rows["ckpt-t-1"].usage_unknown is not None and "reports no stats" in rows["ckpt-t-1"].usage_unknown
    out = io.StringIO()
    print_state(Console(file=out, width=240), state)
    text = out.getvalue()
    assert "40.0Gi/250.0Gi 16%" in text and "10/1000 1%" in text
    assert "used space of ckpt-t-0 is its filesystem's, larger than the claim" in text
    assert "used space of ckpt-t-1, dataset: the kubelet reports no stats for this volume" in text


def test_status_text_flags_full_claims() -> None:
    usage = parse_summary("node-0", json.loads(_summary([_volume("ckpt-t-0", 900 << 20, GI)])))
    state = _state(usage, kwok=set(), answered={"node-0"})
    out = io.StringIO()
    print_state(Console(file=out, width=240), state)
    line = next(line for line in out.getvalue().splitlines() if "ckpt-t-0" in line and "Bound" in line)
    assert "900.0Mi/1.0Gi 88%" in line and line.rstrip().endswith("FULL")
    assert "note: ckpt-t-0 above 85% full (bytes or inodes): expand or prune" in out.getvalue()


def test_without_stats_the_table_is_unchanged() -> None:
    state = classify(
        "t", "ns", Fetched(_sts(), [_pod(0)], [_claim("ckpt-t-0")], {}, []), now=NOW
    )  # volume_stats not asked (wait, gc): no columns, no notes
    out = io.StringIO()
    print_state(Console(file=out, width=240), state)
    assert "used" not in out.getvalue() and "inodes" not in out.getvalue()
    assert binary_size(None) == "-" and binary_size(512) == "512" and binary_size(3 << 40) == "3.0Ti"
