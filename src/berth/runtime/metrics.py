"""Checkpoint metrics the rendered ServiceMonitor scrapes and the "checkpoint stale" alert reads.

Names are fixed by the cross-area contract; one set per process (the default registry),
served on BERTH_METRICS_PORT by the first manager that asks for it.
"""

from __future__ import annotations

import os
import threading
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from berth.errors import UsageError

_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

SAVE_DURATION = Histogram(
    "berth_checkpoint_save_duration_seconds", "Time from save() to the committed shard.", buckets=_BUCKETS
)
RESTORE_DURATION = Histogram(
    "berth_checkpoint_restore_duration_seconds", "Time restore() took, download included.", buckets=_BUCKETS
)
BYTES = Counter("berth_checkpoint_bytes", "Bytes moved by checkpoint operations.", ["op"])
THROUGHPUT = Gauge(
    "berth_checkpoint_throughput_bytes_per_second", "Throughput of the last operation of each kind.", ["op"]
)
LAST_SUCCESS = Gauge("berth_checkpoint_last_success_timestamp_seconds", "Unix time of the last committed save.")
LAST_STEP = Gauge("berth_checkpoint_last_step", "Step of the last committed save.")
ARCHIVE_LAG = Gauge("berth_checkpoint_archive_lag_steps", "Committed steps not yet in the archive.")
FAILURES = Counter("berth_checkpoint_failures", "Failed checkpoint operations.", ["op"])

_server_lock = threading.Lock()
_server_port: int | None = None


def record(op: str, nbytes: int, seconds: float) -> None:
    """Count bytes and set the throughput of one finished operation (save|restore|upload|download)."""
    BYTES.labels(op).inc(nbytes)
    if seconds > 0:
        THROUGHPUT.labels(op).set(nbytes / seconds)


def committed(step: int) -> None:
    LAST_SUCCESS.set(time.time())
    LAST_STEP.set(step)


def serve(port: int | None = None) -> int | None:
    """Start the /metrics endpoint once per process; port from the argument or BERTH_METRICS_PORT.

    Binds all interfaces (Prometheus scrapes the pod IP) unless BERTH_METRICS_ADDR says otherwise.
    Returns the port served, or None when no port is configured.
    """
    global _server_port
    if port is None:
        raw = os.environ.get("BERTH_METRICS_PORT")
        if not raw:
            return None
        try:
            port = int(raw)
        except ValueError:
            raise UsageError(f"environment variable BERTH_METRICS_PORT={raw!r} is not a port number") from None
    with _server_lock:
        if _server_port is None:
            start_http_server(port, addr=os.environ.get("BERTH_METRICS_ADDR", "0.0.0.0"))
            _server_port = port
        return _server_port
