"""``berth run``: the in-pod entrypoint for images that have berth installed.

It computes the rendezvous env with the same code the rendered shell preamble is tested
against (berth.rendezvous), waits until every peer's stable DNS name resolves (the
headless Service publishes pods only once they exist, and frameworks fail hard on a
missing master), then replaces itself with the training command.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from berth.contract import ENV_LIFECYCLE
from berth.errors import BerthError, UsageError
from berth.rendezvous import RendezvousParams


def pod_ordinal(environ: Mapping[str, str]) -> int:
    """POD_INDEX (downward API label), else the ``-N`` suffix of POD_NAME, as the preamble does."""
    raw = environ.get("POD_INDEX") or ""
    if not raw:
        match = re.search(r"-(\d+)$", environ.get("POD_NAME", ""))
        raw = match.group(1) if match else ""
    if not raw.isdigit():
        raise BerthError(
            f"cannot tell this pod's index (POD_INDEX={environ.get('POD_INDEX')!r} "
            f"POD_NAME={environ.get('POD_NAME')!r})",
            hint="run inside a pod rendered by `berth render`, or set POD_INDEX",
        )
    return int(raw)


def rendezvous_env(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The env the training command gets (ours merged over the pod's) and the peers' host names."""
    params = RendezvousParams.from_env(environ)
    return {**environ, **params.env_for(pod_ordinal(environ))}, params.hosts()


def wait_for_peers(
    hosts: Sequence[str],
    timeout: float,
    *,
    resolve: Callable[[str], object] = socket.gethostbyname,
    on_wait: Callable[[list[str]], None] | None = None,
) -> None:
    """Poll until every host name resolves; BerthError naming the missing ones after ``timeout``."""
    pending = list(hosts)
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        still = []
        for host in pending:
            try:
                resolve(host)
            except OSError:
                still.append(host)
        pending = still
        if not pending:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(pending[:3]) + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")
            raise BerthError(
                f"peers did not appear in DNS within {timeout:.0f}s: {shown}",
                hint="check that all pods are scheduled and the headless Service publishes not-ready addresses",
            )
        if on_wait is not None:
            on_wait(pending)
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 5.0)


def run(command: Sequence[str], environ: Mapping[str, str], *, dns_timeout: float) -> int:
    """Compute the env, wait for peers (unless ``dns_timeout`` is 0), exec ``command``.

    With ``BERTH_LIFECYCLE`` set (``spec.lifecycle``, docs/lifecycle.md) it supervises the
    command instead (:mod:`berth.runtime.supervisor`) and returns the container's exit code;
    otherwise it never returns.
    """
    if not command:
        raise UsageError("no command to run", hint="berth run -- python train.py")
    env, hosts = rendezvous_env(environ)
    # BERTH_GANG_HOST names rank 0 directly (local runs on 127.0.0.1): there is no DNS to wait for.
    if dns_timeout > 0 and not environ.get("BERTH_GANG_HOST"):
        wait_for_peers(hosts, dns_timeout)
    if environ.get(ENV_LIFECYCLE):
        from berth.runtime.supervisor import supervise

        return supervise(command, env, pod_ordinal(environ), hosts[0])
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as err:
        raise BerthError(f"cannot run {command[0]!r}: {err.strerror}", exit_code=127) from None
