"""Two `berth operator run` replicas on the real API server: a Lease elects one; SIGKILL hands over.

Short lease timings (3 s lease, 2 s renew deadline, 0.5 s retry) keep the test to seconds; the
production defaults (15 s / 10 s / 2 s) only scale the same arithmetic.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from .cluster_helpers import seed_like
from .test_operator import eventually, get, start_operator, stop, wait_sts_replicas
from .test_operator_crd import install_crd, kubectl_run

pytestmark = pytest.mark.cluster

LEASE = "berth-operator-test"
TIMINGS = ("--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "0.5s")


def holder(kubectl: Path, kubeconfig: Path, namespace: str) -> str | None:
    return holder_of(kubectl, kubeconfig, namespace, LEASE)


def reconciled(log: Path) -> bool:
    """kopf logs each handler and timer that ran (``Handler 'make_registry.<locals>.reconcile_handler'``)."""
    text = log.read_text(errors="replace")
    return "reconcile_handler' succeeded" in text or "resync' succeeded" in text


def test_one_replica_leads_and_a_standby_takes_over_after_sigkill(
    kubectl: Path, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    install_crd(kubectl, kubeconfig)
    logs = {who: tmp_path / f"{who}.log" for who in ("a", "b")}
    procs = {
        who: start_operator(
            kubeconfig,
            namespace,
            logs[who],
            "--lease-namespace",
            namespace,
            "--lease-name",
            LEASE,
            "--identity",
            who,
            *TIMINGS,
        )
        for who in ("a", "b")
    }
    try:
        leader = eventually(lambda: holder(kubectl, kubeconfig, namespace), "a Lease holder", 60)
        standby = "b" if leader == "a" else "a"
        eventually(lambda: "standing by as" in logs[standby].read_text(), f"{standby} standing by", 30)

        first = seed_like(namespace, name="le1", replicas=2)
        done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(first))
        assert done.returncode == 0, done.stderr
        eventually(
            lambda: (
                ((get(kubectl, kubeconfig, "tc", "le1", "-n", namespace) or {}).get("status") or {}).get(
                    "observedGeneration"
                )
                == 1
            ),
            "le1 reconciled",
            60,
        )
        # Several resync ticks (2 s) pass: the standby stays idle, the lease stays put.
        time.sleep(3)
        assert reconciled(logs[leader]), logs[leader].read_text()[-3000:]
        assert not reconciled(logs[standby]), logs[standby].read_text()[-3000:]
        assert holder(kubectl, kubeconfig, namespace) == leader

        # SIGKILL the leader: no release; the standby waits out the 3 s lease and takes over.
        killed_at = time.time()  # wall clock: compared with the Lease's acquireTime (same host)
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(timeout=10)
        second = seed_like(namespace, name="le2", replicas=1, serviceName="le2-training")
        done = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(second))
        assert done.returncode == 0, done.stderr
        eventually(lambda: holder(kubectl, kubeconfig, namespace) == standby, f"{standby} leading", 30)
        lease: dict[str, Any] = get(kubectl, kubeconfig, "lease", LEASE, "-n", namespace) or {}
        assert lease["spec"]["leaseTransitions"] >= 1
        # The takeover's moment is the Lease's own acquireTime, not when this test's kubectl polls
        # (each a process start, seconds under load) happened to see it.
        acquired = datetime.fromisoformat(lease["spec"]["acquireTime"].replace("Z", "+00:00")).timestamp()
        takeover_s = acquired - killed_at
        assert 0 < takeover_s < 3 + 4, f"takeover took {takeover_s:.1f}s"

        # The new leader resumes: the CR created while nobody led, and a change to the old one.
        eventually(lambda: get(kubectl, kubeconfig, "statefulset", "le2", "-n", namespace), "le2 reconciled", 60)
        scaled = kubectl_run(kubectl, kubeconfig, "scale", "tc/le1", "-n", namespace, "--replicas", "3")
        assert scaled.returncode == 0, scaled.stderr
        wait_sts_replicas(kubectl, kubeconfig, namespace, "le1", 3, "le1 scaled by the new leader")
        assert reconciled(logs[standby])

        started = time.monotonic()
        deleted = kubectl_run(kubectl, kubeconfig, "delete", "tc", "--all", "-n", namespace, "--timeout=60s")
        assert deleted.returncode == 0, deleted.stderr
        # Even when the delete lands in a resync (every 2 s here), it does not wait out kopf's 60 s polling.
        assert time.monotonic() - started < 30, f"delete took {time.monotonic() - started:.1f}s"
        # A clean stop gives the Lease up at once (no holder), so a next replica need not wait it out.
        stop(procs[standby])
        assert procs[standby].returncode == 0, logs[standby].read_text()[-3000:]
        assert holder(kubectl, kubeconfig, namespace) is None
    finally:
        if any(proc.poll() is None for proc in procs.values()):  # its finalizer lets the CRs go
            kubectl_run(kubectl, kubeconfig, "delete", "tc", "--all", "-n", namespace, "--timeout=60s")
        for who, proc in procs.items():
            stop(proc)
            print(f"--- operator {who} (exit {proc.returncode})\n{logs[who].read_text(errors='replace')[-4000:]}")


def test_racing_candidates_one_wins_and_a_leader_steps_down_on_time(
    kubectl: Path, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """LeaseElector in-process on the real API server: the resourceVersion guard and both ways to lose."""
    import threading

    from berth.kube.client import RetryPolicy, Target, connect
    from berth.operator.leader import LeaseElector

    def client(config: Path = kubeconfig) -> Any:
        return connect(Target(str(config), None, namespace), retry=RetryPolicy(budget_s=0), timeout_s=1)

    clients = {who: client() for who in ("a", "b")}

    def candidate(who: str, lease: str) -> LeaseElector:
        return LeaseElector(
            clients[who], name=lease, namespace=namespace, identity=who, lease_s=3, renew_s=2, retry_s=0.5
        )

    # Races for a fresh Lease, both candidates released by one barrier: exactly one holds it.
    for race in range(6):
        pair = [candidate(who, f"race-{race}") for who in ("a", "b")]
        barrier, won = threading.Barrier(2), dict[str, bool]()

        def attempt(elector: LeaseElector, barrier: threading.Barrier, won: dict[str, bool]) -> None:
            barrier.wait()
            won[elector.identity] = elector.try_acquire_or_renew()

        threads = [threading.Thread(target=attempt, args=(e, barrier, won)) for e in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert sorted(won.values()) == [False, True], won
        assert holder_of(kubectl, kubeconfig, namespace, f"race-{race}") == next(w for w, ok in won.items() if ok)

    # Someone else writes the Lease: the leader notices at its next renewal and steps down.
    leader = candidate("a", "taken")
    assert leader.try_acquire_or_renew()
    lost: list[tuple[float, str]] = []
    started = time.monotonic()
    stop_renewing = leader.keep(lambda why: lost.append((time.monotonic() - started, why)))
    try:
        patched = kubectl_run(
            kubectl, kubeconfig, "patch", "lease", "taken", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"holderIdentity": "intruder"}}',
        )  # fmt: skip
        assert patched.returncode == 0, patched.stderr
        eventually(lambda: lost, "the leader stepping down", 5)
        assert "taken by intruder" in lost[0][1]
    finally:
        stop_renewing.set()

    # The API server unreachable for the leader: the watchdog ends leadership at the renew deadline
    # (2 s), before the lease (3 s) lets a standby take over.
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(yaml.safe_dump(config))
    cut_off, offline = candidate("b", "cut-off"), client(unreachable)
    assert cut_off.try_acquire_or_renew()
    started = time.monotonic()  # its last renewal
    cut_off.kube = offline
    lost.clear()
    stop_renewing = cut_off.keep(lambda why: lost.append((time.monotonic() - started, why)))
    try:
        eventually(lambda: lost, "the watchdog", 5)
        after, why = lost[0]
        assert "not renewed for" in why and 2 <= after < 3, lost
    finally:
        stop_renewing.set()


def holder_of(kubectl: Path, kubeconfig: Path, namespace: str, name: str) -> str | None:
    lease = get(kubectl, kubeconfig, "lease", name, "-n", namespace) or {}
    return (lease.get("spec") or {}).get("holderIdentity")
