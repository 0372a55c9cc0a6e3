"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go's leaderelection does it.

kopf's *peering* is not leader election: replicas of equal priority all pause ("possibly
conflicting operators"), so a two-replica Deployment would reconcile nothing, and a higher
priority is a static choice, not a vote. A Lease is what Kubernetes' own controllers use:

- a candidate takes the Lease when it does not exist, names nobody, or has not been renewed for
  ``leaseDurationSeconds`` *as observed on the candidate's own clock* (the holder's ``renewTime``
  is never compared with local time, so clock skew between machines does not matter);
- every write is an update carrying the ``resourceVersion`` read just before, so of two candidates
  racing for an expired Lease the API server lets exactly one win (the other gets 409);
- the leader renews every ``retry_s``; when it has not renewed for ``renew_s`` (< ``lease_s``) it
  stops acting *before* anyone else may take over — here by leaving the process (``on_lost``),
  as controller-runtime does, so its Deployment restarts it as a candidate;
- a leader that stops cleanly gives the Lease up (no holder, duration 1 s): the standby takes over
  at its next try instead of waiting out the lease.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from berth.kube.client import Kube

log = logging.getLogger("berth.operator.leader")


@dataclass
class LeaseElector:
    """One candidate for the Lease ``namespace/name``; ``identity`` must be unique per process."""

    kube: Kube  # a client without retries and with short timeouts: a renewal must not outlive renew_s
    name: str
    namespace: str
    identity: str
    lease_s: float = 15.0
    renew_s: float = 10.0
    retry_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _observed: tuple[str | None, str | None] = field(default=(None, None), init=False)  # (holder, renewTime)
    _observed_at: float = field(default=0.0, init=False)  # when _observed last changed, on this clock
    _last_renew: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_s < self.lease_s:
            from berth.errors import UsageError

            raise UsageError(
                f"leader election needs retry ({self.retry_s}s) < renew deadline ({self.renew_s}s)"
                f" < lease duration ({self.lease_s}s)",
                "e.g. --lease-duration 15s --renew-deadline 10s --retry-period 2s",
            )

    def holder(self) -> str | None:
        """Who holds the Lease now (None: nobody, or no Lease)."""
        lease = self._read()
        return (lease.spec.holderIdentity or None) if lease is not None and lease.spec else None

    def _read(self) -> Any:
        from lightkube import ApiError
        from lightkube.resources.coordination_v1 import Lease

        try:
            return self.kube.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards. Never raises for API trouble."""
        from lightkube import ApiError
        from lightkube.models.coordination_v1 import LeaseSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.coordination_v1 import Lease

        now = dt.datetime.now(dt.UTC)
        try:
            lease = self._read()
            if lease is None:
                spec = LeaseSpec(
                    holderIdentity=self.identity,
                    leaseDurationSeconds=max(1, round(self.lease_s)),
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                )
                self.kube.client.create(Lease(metadata=ObjectMeta(name=self.name, namespace=self.namespace), spec=spec))
                return self._won()
            spec = lease.spec or LeaseSpec()
            holder = spec.holderIdentity or None
            seen = (holder, str(spec.renewTime))
            if seen != self._observed:
                self._observed, self._observed_at = seen, self.clock()
            if holder and holder != self.identity:
                duration = float(spec.leaseDurationSeconds or self.lease_s)
                if self._observed_at + duration > self.clock():
                    return False  # held, and renewed within its duration as far as this clock can tell
            if holder != self.identity:
                spec.acquireTime = now
                spec.leaseTransitions = (spec.leaseTransitions or 0) + (1 if holder else 0)
            spec.holderIdentity = self.identity
            spec.leaseDurationSeconds = max(1, round(self.lease_s))
            spec.renewTime = now
            lease.spec = spec
            self.kube.client.replace(lease)  # carries metadata.resourceVersion: 409 when someone was faster
            return self._won()
        except ApiError as err:
            log.info("lease %s/%s: %s", self.namespace, self.name, err.status.message)
            return False
        except Exception as err:  # the API server unreachable or slow: not leader this round
            log.info("lease %s/%s: %s", self.namespace, self.name, err)
            return False

    def _won(self) -> bool:
        self._last_renew = self.clock()
        return True

    def acquire(self) -> None:
        """Block until this candidate leads (SIGINT/SIGTERM end the wait as usual)."""
        announced: str | None = None
        while not self.try_acquire_or_renew():
            holder = self._observed[0]
            if holder != announced:
                log.info("standing by as %s: lease %s/%s held by %s", self.identity, self.namespace, self.name, holder)
                announced = holder
            time.sleep(self.retry_s)
        log.info("leading as %s (lease %s/%s)", self.identity, self.namespace, self.name)

    def keep(self, on_lost: Callable[[str], None]) -> threading.Event:
        """Renew in the background; call ``on_lost(reason)`` once when leadership cannot be kept.

        A watchdog, not the renewing thread, checks the deadline, so a renewal stuck in a slow API
        call still ends leadership on time. Set the returned event to stop renewing.
        """
        stop = threading.Event()
        lost = threading.Event()

        def renew() -> None:
            while not stop.wait(self.retry_s):
                if not self.try_acquire_or_renew() and self._observed[0] not in (None, self.identity):
                    lost.set()
                    return on_lost(f"lease {self.namespace}/{self.name} taken by {self._observed[0]}")

        def watchdog() -> None:
            while not stop.wait(min(0.2, self.retry_s)):
                if lost.is_set():
                    return
                late = self.clock() - self._last_renew
                if late > self.renew_s:
                    lost.set()
                    return on_lost(f"lease {self.namespace}/{self.name} not renewed for {late:.1f}s")

        for target in (renew, watchdog):
            threading.Thread(target=target, name=f"lease-{target.__name__}", daemon=True).start()
        return stop

    def release(self) -> None:
        """Give the Lease up if this candidate holds it, so a standby takes over at once."""
        from lightkube.models.coordination_v1 import LeaseSpec

        try:
            lease = self._read()
            if lease is None or lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec = LeaseSpec(
                holderIdentity=None,
                leaseDurationSeconds=1,
                acquireTime=lease.spec.acquireTime,
                renewTime=dt.datetime.now(dt.UTC),
                leaseTransitions=lease.spec.leaseTransitions,
            )
            self.kube.client.replace(lease)
            log.info("released lease %s/%s", self.namespace, self.name)
        except Exception as err:  # leaving anyway: the lease then expires on its own
            log.info("could not release lease %s/%s: %s", self.namespace, self.name, err)
