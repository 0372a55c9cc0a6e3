"""Where each dataset's staging stands, read off pods `status` has already listed (no extra call).

A dataset is staged by a populate Job's pod (into a shared volume) or by a ``stage-<dataset>`` init
container in each trainer pod (into its own volume); trainers of a shared dataset wait in a
``wait-<dataset>`` init container (names: :mod:`berth.spec.datasets`). Each place reports in its
container status: running, waiting (and why), or terminated with the copier's report as its
termination message (``berth stage --report``) or, when it failed, the tail of its log
(``FallbackToLogsOnError``). Pure: lightkube ``Pod`` objects in, rows out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from berth.contract import DATASET_COMPONENT, LABEL_COMPONENT
from berth.spec.datasets import JOB_HASH_LEN, init_container_name

# A stage container waiting for its turn says so with one of these; anything else is a problem.
_STARTING = {"PodInitializing", "ContainerCreating"}


@dataclass
class StagingRow:
    """One place a dataset is staged or waited for: a populate pod, or an init container of a trainer."""

    dataset: str
    pod: str
    how: str  # "populate Job", "init (own volume)" or "waits for the populate Job"
    state: str  # "pending", "running" (a waiter: "waiting"), "done", "failed"
    detail: str = ""  # the report's figures, the reason it waits, or the failure's last words
    restarts: int = 0

    def to_json(self) -> dict[str, Any]:
        """One row of ``berth status -o json``'s ``datasets``."""
        return {
            "dataset": self.dataset,
            "pod": self.pod,
            "how": self.how,
            "state": self.state,
            "detail": self.detail,
            "restarts": self.restarts,
        }


def _report(message: str | None) -> str:
    """``10000 files (9998 fetched, 2 up to date), 39.1 MiB in 12.3 s`` from ``berth stage``'s report."""
    try:
        r = json.loads(message or "")
        return (
            f"{r['files']} files ({r['fetched']} fetched, {r['skipped']} up to date), "
            f"{int(r['bytesFetched']) / (1 << 20):.1f} MiB in {r['seconds']} s"
        )
    except (ValueError, KeyError, TypeError):
        return _last_line(message)


def _last_line(message: str | None) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _row(dataset: str, pod: str, how: str, cs: Any, *, stages: bool) -> StagingRow:
    """The row for container status ``cs`` (None: the kubelet has not reported the container yet)."""
    row = StagingRow(dataset, pod, how, "pending", restarts=int(getattr(cs, "restartCount", 0) or 0))
    state = getattr(cs, "state", None)
    last = getattr(getattr(cs, "lastState", None), "terminated", None)
    if state is None:
        return row
    if state.terminated is not None:
        ok = state.terminated.exitCode == 0
        row.state = "done" if ok else "failed"
        message = state.terminated.message
        row.detail = (_report(message) if stages else "ready") if ok else _last_line(message) or state.terminated.reason
    elif state.running is not None:
        row.state = "running" if stages else "waiting"
        if last is not None and last.exitCode:  # restarted after a failure (OnFailure, or the pod's restart)
            row.detail = f"restarted after: {_last_line(last.message) or last.reason or f'exit {last.exitCode}'}"
    elif state.waiting is not None:
        reason = state.waiting.reason or ""
        row.state = "pending" if reason in _STARTING or not reason else "failed"
        row.detail = f"{reason}: {state.waiting.message}" if state.waiting.message else reason
        if last is not None and last.exitCode:
            row.detail += f"; last run: {_last_line(last.message) or last.reason}"
    return row


def staging_rows(cluster: str, pods: list[Any], trainers: list[Any]) -> list[StagingRow]:
    """Rows for the cluster's populate pods (among ``pods``) and its trainers' dataset init containers."""
    rows: list[StagingRow] = []
    for pod in pods:
        labels = (pod.metadata.labels or {}) if pod.metadata else {}
        job = labels.get("job-name") or labels.get("batch.kubernetes.io/job-name") or ""
        if labels.get(LABEL_COMPONENT) != DATASET_COMPONENT or not job.startswith(f"{cluster}-"):
            continue
        dataset = job[len(cluster) + 1 : -(JOB_HASH_LEN + 1)] or job
        statuses = (pod.status.containerStatuses or []) if pod.status else []
        row = _row(dataset, pod.metadata.name, "populate Job", statuses[0] if statuses else None, stages=True)
        if not statuses and pod.status and pod.status.phase == "Pending":
            row.detail = next((c.message for c in pod.status.conditions or [] if c.message), "") or ""
        rows.append(row)
    for pod in trainers:
        declared = [c.name for c in (pod.spec.initContainers or [])] if pod.spec else []
        reported = {s.name: s for s in ((pod.status.initContainerStatuses or []) if pod.status else [])}
        for name in declared:
            for shared, how in ((False, "init (own volume)"), (True, "waits for the populate Job")):
                prefix = init_container_name("", shared=shared)
                if name.startswith(prefix):
                    dataset = name[len(prefix) :]
                    rows.append(_row(dataset, pod.metadata.name, how, reported.get(name), stages=not shared))
    return sorted(rows, key=lambda r: (r.dataset, r.how != "populate Job", r.pod))
