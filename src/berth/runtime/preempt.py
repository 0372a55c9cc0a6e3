"""Preemption for the training loop: learn that the pod is going away, and save now.

``berth run`` forwards SIGTERM (pod delete, node drain, spot reclaim, a gang restart) to the
trainer's process group. A loop that calls :func:`should_stop` once per step saves a final
checkpoint and exits within the pod's grace period instead of being killed mid-step::

    from berth.runtime import preempt

    preempt.install()
    for step in range(start, total):
        train_step()
        if preempt.should_stop():
            mgr.save(step, state, blocking=True)
            sys.exit(143)

Exiting after a stop request is never taken for completion: the supervisor asked for it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

_stop = threading.Event()
_callbacks: list[Callable[[], None]] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    _stop.set()
    for callback in list(_callbacks):
        callback()


def install(*signals: signal.Signals) -> None:
    """Catch SIGTERM (and ``signals``) in the main thread: they set :func:`should_stop`."""
    for sig in signals or (signal.SIGTERM,):
        signal.signal(sig, _handler)


def on_stop(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from the signal handler: keep it short) when the stop request arrives."""
    _callbacks.append(callback)


def should_stop() -> bool:
    """True once SIGTERM arrived: save a checkpoint and exit."""
    return _stop.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until the stop request (or ``timeout``); True when it came."""
    return _stop.wait(timeout)
