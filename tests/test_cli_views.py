"""The rollout view the CLI hands to `wait` as its progress callback: live table or plain lines."""

from __future__ import annotations

from rich.console import Console

from berth.cli.views import rollout_progress
from berth.kube.status import ClusterState, PodRow
from berth.kube.wait import readiness


def _state(ready: bool) -> ClusterState:
    pod = PodRow(
        name="t-0",
        ordinal=0,
        phase="Running" if ready else "Pending",
        ready=ready,
        node="n",
        zone="z",
        restarts=0,
        revision="r",
        reason=None if ready else "PodScheduled: 0/3 nodes are available",
    )
    return ClusterState(
        name="t",
        namespace="ns",
        exists=True,
        replicas=1,
        ready_replicas=int(ready),
        updated_replicas=1,
        current_revision="r",
        update_revision="r",
        generation_observed=True,
        retention={},
        templates=[],
        pods=[pod],
        claims=[],
        shared=[],
    )


def test_piped_progress_is_one_line_per_change() -> None:
    console = Console(record=True, force_terminal=False, width=200)
    with rollout_progress(console) as progress:
        for state in (_state(False), _state(False), _state(True)):
            progress(state, readiness(state))
    lines = console.export_text().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "  t: 0/1 pods ready, 0/0 claims Bound",
        "  t: 1/1 pods ready, 0/0 claims Bound",
    ]


def test_terminal_progress_is_the_live_table_and_nothing_without_snapshots() -> None:
    console = Console(record=True, force_terminal=True, width=200)
    with rollout_progress(console):
        pass  # `up --no-wait`: no snapshot, nothing drawn
    assert console.export_text() == ""
    with rollout_progress(console) as progress:
        progress(_state(False), readiness(_state(False)))
    text = console.export_text()
    assert "waiting on" in text and "0/3 nodes are available" in text
