"""How the cluster commands show things to people: result lines, the status tables, the live rollout.

Views live in the CLI so the library (``berth.kube``) returns data and never draws: ``wait``
reports each snapshot to a callback and :func:`rollout_progress` turns that into a live
table on a terminal, or one line per change when stderr is a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from berth.kube.apply import ObjectResult
    from berth.kube.status import ClaimRow, ClusterState
    from berth.kube.wait import Readiness

MAX_ROWS = 20  # pods shown in the live rollout table; the rest are counted
_MARK = {"create": "+", "update": "~", "unchanged": "=", "skipped": "!", "leftover": "?", "pruned": "-"}


def result_line(console: Console, r: ObjectResult, verb: dict[str, str]) -> None:
    """``  ~ StatefulSet ml/t: update (spec.replicas)``: one object's action, its changed fields, a note."""
    line = f"  {_MARK[r.action]} {r.ref}: {verb[r.action]}"
    if r.changed:
        line += f" ({', '.join(r.changed[:6])}{', …' if len(r.changed) > 6 else ''})"
    if r.note:
        line += f" — {r.note}"
    console.print(line, markup=False)


def size(value: str | None) -> str:
    """A claim size column: ``-`` when the server has not reported one yet."""
    return value or "-"


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def binary_size(n: int | None) -> str:
    """``9.8Gi``: bytes in the binary units claims are sized in; ``-`` when unknown."""
    if n is None:
        return "-"
    value, unit = float(n), ""
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
        if value < 1024 or unit == "Pi":
            break
        value /= 1024
    return f"{value:.0f}{unit}" if not unit else f"{value:.1f}{unit}"


def _used(c: ClaimRow) -> tuple[str, str]:
    """The used and inodes cells of a claim: ``10.0Mi/64.0Mi 16%`` and ``12/16Ki 0%``, or ``n/a``."""
    u = c.usage
    if u is None:
        return ("n/a" if c.usage_unknown else "-"), "-"
    used = f"{binary_size(u.used_bytes)}/{binary_size(u.capacity_bytes)}"
    if u.used_ratio is not None:
        used += f" {u.used_ratio:.0%}"
    inodes = "-"
    if u.inodes:
        inodes = f"{u.inodes_used if u.inodes_used is not None else '-'}/{u.inodes}"
        inodes += f" {u.inodes_ratio:.0%}" if u.inodes_ratio is not None else ""
    return used, inodes


def _usage_notes(state: ClusterState) -> list[str]:
    """Claims without stats, grouped by why; claims whose figures are a larger filesystem's."""
    from berth.kube.volumestats import FULL_RATIO

    by_reason: dict[str, list[str]] = {}
    for c in [*state.claims, *state.shared]:
        if c.usage_unknown:
            by_reason.setdefault(c.usage_unknown, []).append(c.name)
    lines = [f"used space of {', '.join(names)}: {why}" for why, names in by_reason.items()]
    full = [c.name for c in [*state.claims, *state.shared] if c.usage and c.usage.full]
    if full:
        lines.append(f"{', '.join(full)} above {FULL_RATIO:.0%} full (bytes or inodes): expand or prune")
    wide = [c.name for c in [*state.claims, *state.shared] if c.shared_fs]
    if wide:
        lines.append(
            f"used space of {', '.join(wide)} is its filesystem's, larger than the claim "
            "(a local or hostPath directory: the kubelet measures the whole disk)"
        )
    return lines


def print_state(console: Console, state: ClusterState) -> None:
    """``berth status``: a summary line, the pods table, datasets' staging, the claims table, orphans and notes."""
    from rich.table import Table

    console.print(
        f"{state.name} in {state.namespace}: {state.ready_replicas}/{state.replicas} ready, "
        f"rollout {state.rollout}, revision {state.update_revision or '-'}",
        markup=False,
    )
    if state.run is not None:
        run = state.run
        why = f": {run.reason}" if run.reason and run.phase != "Succeeded" else ""
        console.print(f"run {run.phase}, {run.restarts} gang restart(s){why}", markup=False)
    extra = ("run", "gang restarts", "step", "exit", "last stop") if state.run is not None else ()
    pods = Table("ordinal", "pod", "phase", "ready", "node", "zone", "restarts", *extra, "reason", box=None)
    for p in state.pods:
        cells = []
        if state.run is not None:
            r = p.run
            cells = [r.phase, str(r.restarts), _dash(r.step), _dash(r.exit_code)] if r else ["Pending", "-", "-", "-"]
            took = r.last_stop_seconds if r else None  # the last SIGTERM's final save (doctor: grace-period-tight)
            cells.append(f"{took:.0f}s of {p.grace_seconds}s" if took is not None and p.grace_seconds else "-")
        pods.add_row(
            str(p.ordinal),
            p.name,
            p.phase,
            "yes" if p.ready else "no",
            p.node or "-",
            p.zone or "-",
            str(p.restarts),
            *cells,
            p.reason or "",
        )
    console.print(pods)
    if state.datasets:
        staging = Table("dataset", "how", "pod", "state", "restarts", "detail", box=None)
        for d in state.datasets:
            staging.add_row(d.dataset, d.how, d.pod, d.state, str(d.restarts), d.detail)
        console.print(staging)
    stats = any(c.usage or c.usage_unknown for c in [*state.claims, *state.shared])
    columns = ("used", "inodes") if stats else ()
    claims = Table(
        "template", "ordinal", "claim", "phase", "class", "requested", "capacity", *columns, "volume", "", box=None
    )
    for c in [*state.claims, *state.shared]:
        flag = "ORPHANED" if c.orphaned else ("shared" if c.template is None else "")
        if c.protected:
            flag = (flag + " protected").strip()
        if c.usage and c.usage.full:
            flag = (flag + " FULL").strip()
        claims.add_row(
            c.template or "-",
            "-" if c.ordinal is None else str(c.ordinal),
            c.name,
            c.phase,
            c.storage_class or "-",
            size(c.requested),
            size(c.capacity),
            *(_used(c) if stats else ()),
            c.volume or "-",
            flag,
        )
    console.print(claims)
    if state.orphans:
        console.print(
            f"{len(state.orphans)} orphaned claim(s) from scale-down: `berth gc {state.name} "
            f"-n {state.namespace}` lists them",
            markup=False,
        )
    for note in [*_usage_notes(state), *state.notes]:
        console.print(f"note: {note}", markup=False)


def claim_label(name: str, capacity: str | None, age_s: float | None) -> str:
    """``ckpt-t-3 (10Gi, age 5d)``: how gc names a claim."""
    from berth.quantity import format_age

    return f"{name} ({size(capacity)}, age {format_age(age_s)})"


def print_deletions(console: Console, rows: list[tuple[bool, bool, str, str]], *, yes: bool, nothing: str) -> None:
    """One line per object: deleted / would delete / keep, and why; the dry-run reminder."""
    for delete, deleted, what, reason in rows:
        verb = ("deleted" if deleted else "would delete") if delete else "keep"
        console.print(f"  {verb} {what}: {reason}", markup=False)
    doomed = sum(1 for row in rows if row[0])
    if not doomed:
        console.print(nothing, markup=False)
    elif not yes:
        console.print(f"dry run: {doomed} would be deleted; rerun with --yes to delete", markup=False)


def rollout_table(state: ClusterState, status: Readiness, elapsed: float) -> RenderableType:
    """The live rollout: one row per pod (not-ready first) with its claims and what it waits on."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("pod", "phase", "ready", "node", "claims", "waiting on"):
        table.add_column(col)
    claims_of: dict[int, list[str]] = {}
    for c in state.claims:
        if c.ordinal is not None:
            claims_of.setdefault(c.ordinal, []).append(f"{c.template}:{c.phase}")
    rows = sorted(state.pods, key=lambda p: (p.ready, p.ordinal or 0))
    for pod in rows[:MAX_ROWS]:
        table.add_row(
            pod.name,
            pod.phase,
            "yes" if pod.ready else "no",
            pod.node or "-",
            " ".join(claims_of.get(pod.ordinal or 0, [])) or "-",
            "" if pod.ready else (pod.reason or ""),
        )
    more = len(rows) - MAX_ROWS
    head = Text(f"{status.summary} · {state.rollout} · {elapsed:.0f}s", style="bold")
    parts: list[RenderableType] = [head, table]
    if more > 0:
        parts.append(Text(f"… {more} more pods"))
    return Group(*parts)


@contextmanager
def rollout_progress(console: Console) -> Iterator[Callable[[ClusterState, Readiness], None]]:
    """A ``wait`` progress callback: the live table on a terminal, else a line whenever the summary changes.

    Elapsed time counts from the first snapshot, when waiting starts (after ``up`` has applied).
    """
    started: list[float] = []

    def elapsed() -> float:
        if not started:
            started.append(time.monotonic())
        return time.monotonic() - started[0]

    if not console.is_terminal:
        last = ""

        def line(state: ClusterState, status: Readiness) -> None:
            nonlocal last
            seconds = elapsed()
            if status.summary != last:
                console.print(f"  {status.summary} ({seconds:.0f}s)", highlight=False)
                last = status.summary

        yield line
        return
    from rich.live import Live

    with ExitStack() as stack:
        live: list[Live] = []  # started on the first snapshot: `up --no-wait` draws nothing

        def table(state: ClusterState, status: Readiness) -> None:
            if not live:
                live.append(stack.enter_context(Live(console=console, auto_refresh=False, transient=False)))
            live[0].update(rollout_table(state, status, elapsed()), refresh=True)

        yield table
