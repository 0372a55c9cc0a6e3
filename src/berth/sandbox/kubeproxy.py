"""kube-proxy for ``berth sandbox up --kubelet N --kube-proxy``: ClusterIPs reachable from real pods.

Why a test needs it: a pod's in-cluster API access (``KUBERNETES_SERVICE_HOST`` = the
``kubernetes`` Service's ClusterIP, 10.96.0.1) only works when something translates ClusterIPs.
Here that is the real kube-proxy (``tools/kube/proxy/build.sh``, the control plane's Kubernetes
version) in iptables mode, run as a host process by PID like the kubelets, with a client
certificate for ``system:kube-proxy`` (bound to ``system:node-proxier`` by the API server's own
bootstrap policy).

The API server listens on 127.0.0.1 only, and an EndpointSlice may not name a loopback address,
so with kube-proxy the API server advertises the sandbox bridge's gateway address and the
**relay** (:func:`relay`, a host process) forwards that address and the API server's port to
127.0.0.1. It accepts only this sandbox's bridge subnet. Only this sandbox's pods get a route to
the service CIDR (via the gateway, CNI ``routes``), so other sandboxes' pods never reach these
host-wide rules; the relay's check keeps it that way for anything else on the host.

kube-proxy's chains are host-wide (``KUBE-SERVICES`` …), so one sandbox per host may run it:
:func:`claim` records the owner in :data:`SLOT` and refuses a second while the first's
kube-proxy lives. ``down`` stops it and runs ``kube-proxy --cleanup``, which removes its rules.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import selectors
import socket
import subprocess
import threading
from pathlib import Path

from berth.errors import BerthError
from berth.sandbox.binaries import Progress, build_binary, built_binary, checkout_script, quiet

SLOT = Path("/run/berth-kube-proxy.json")  # which sandbox's kube-proxy owns the host's KUBE-* chains
CLIENT = "kube-proxy"  # the pki client name
USER = "system:kube-proxy"  # bound to ClusterRole system:node-proxier by the bootstrap policy


def build_script() -> Path | None:
    """``tools/kube/proxy/build.sh`` of the source checkout berth runs from, if any."""
    return checkout_script("kube", "proxy", "build.sh")


def find_binary() -> Path | None:
    """The built kube-proxy: ``$BERTH_KUBE_PROXY_BIN`` (a bin directory), else where build.sh puts it."""
    return built_binary(build_script(), "BERTH_KUBE_PROXY_BIN", "kube-proxy")


def build(progress: Progress = quiet) -> Path:
    """Run build.sh (about 20 s with a warm Go build cache; a no-op when built); the binary's path."""
    hint = "set BERTH_KUBE_PROXY_BIN to a directory holding kube-proxy"
    return build_binary(build_script(), "kube-proxy", "kube-proxy", progress, hint)


# ---- the host-wide slot ------------------------------------------------------------------------


def _is_kube_proxy(pid: object) -> bool:
    """Whether ``pid`` is a live kube-proxy (not a recycled PID)."""
    try:
        return isinstance(pid, int) and b"kube-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def claim(state_dir: Path) -> None:
    """Take the host's kube-proxy slot for ``state_dir``, or say who holds it (exit 2)."""
    try:
        held = json.loads(SLOT.read_text())
    except (OSError, ValueError):
        held = None
    if held and held.get("stateDir") != str(state_dir) and _is_kube_proxy(held.get("pid")):
        raise BerthError(
            f"kube-proxy of the sandbox in {held['stateDir']} (pid {held['pid']}) already runs on this host: "
            "its iptables chains are host-wide, so one sandbox at a time may have --kube-proxy",
            hint="stop that sandbox (berth sandbox down) or start this one without --kube-proxy",
            exit_code=2,
        )
    SLOT.write_text(json.dumps({"stateDir": str(state_dir), "pid": None}))


def record_pid(state_dir: Path, pid: int) -> None:
    """The slot names the running kube-proxy, so a crashed sandbox's slot is free again."""
    SLOT.write_text(json.dumps({"stateDir": str(state_dir), "pid": pid}))


def release(state_dir: Path, binary: Path | None) -> None:
    """Remove kube-proxy's rules (``kube-proxy --cleanup``) and free the slot, if this sandbox holds it."""
    try:
        held = json.loads(SLOT.read_text())
    except (OSError, ValueError):
        return
    if held.get("stateDir") != str(state_dir):
        return  # another sandbox's rules: not ours to remove
    if binary is not None:
        subprocess.run([str(binary), "--cleanup", "--proxy-mode=iptables"], capture_output=True, check=False)
        _drop_empty_chain(FIREWALL_CHAIN)
    with contextlib.suppress(FileNotFoundError):
        SLOT.unlink()


FIREWALL_CHAIN = "KUBE-FIREWALL"  # kube-proxy's filter-table chain that --cleanup empties but keeps


def _drop_empty_chain(chain: str) -> None:
    """Remove CHAIN and the INPUT/OUTPUT/FORWARD jumps to it, only when it holds no rule (an empty chain
    is kube-proxy's leftover; one with rules belongs to something else on the host, e.g. a kubelet)."""
    listed = subprocess.run(["iptables", "-S", chain], capture_output=True, text=True, check=False)
    if listed.returncode != 0 or listed.stdout.split() != ["-N", chain]:
        return
    for parent in ("INPUT", "OUTPUT", "FORWARD"):
        for _ in range(16):  # each -D removes one jump
            if subprocess.run(["iptables", "-D", parent, "-j", chain], capture_output=True, check=False).returncode:
                break
    subprocess.run(["iptables", "-X", chain], capture_output=True, check=False)


def leftovers(state_dir: Path) -> list[str]:
    """This sandbox's slot if still held, and kube-proxy's chains when no sandbox holds the slot."""
    try:
        held = json.loads(SLOT.read_text())
    except (OSError, ValueError):
        held = None
    if held is not None:
        return [f"kube-proxy slot {SLOT}"] if held.get("stateDir") == str(state_dir) else []
    chain = subprocess.run(["iptables", "-t", "nat", "-S", "KUBE-SERVICES"], capture_output=True, check=False)
    return ["iptables chain KUBE-SERVICES (nat)"] if chain.returncode == 0 else []


def argv(binary: Path, kubeconfig: Path, node: str, cluster_cidr: str, ports: tuple[int, int]) -> list[str]:
    """kube-proxy's command line: iptables mode, nothing host-wide beyond its own chains.

    The conntrack sysctls are left as they are (0), localhost NodePorts are off (they would set
    ``route_localnet`` on every interface) and NodePorts listen on the sandbox bridge only.
    """
    healthz, metrics = ports
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--proxy-mode=iptables",
        f"--hostname-override={node}",
        f"--cluster-cidr={cluster_cidr}",
        f"--nodeport-addresses={cluster_cidr}",
        "--iptables-localhost-nodeports=false",
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0s",
        "--conntrack-tcp-timeout-close-wait=0s",
        f"--healthz-bind-address=127.0.0.1:{healthz}",
        f"--metrics-bind-address=127.0.0.1:{metrics}",
        "--v=1",
    ]


# ---- the relay: the bridge's gateway address -> the API server on 127.0.0.1 ---------------------


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select():
                src = key.fileobj
                assert isinstance(src, socket.socket)
                data = src.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()
        a.close()
        b.close()


def relay(listen: tuple[str, int], target: tuple[str, int], allow: str, server: socket.socket | None = None) -> None:
    """Forward connections to ``listen`` to ``target``, only from ``allow`` (a CIDR: the sandbox's
    bridge subnet, which holds its pods and the gateway address the host connects from)."""
    allowed = ipaddress.ip_network(allow)
    server = server or socket.create_server(listen, backlog=128)
    while True:
        try:
            conn, (peer, *_) = server.accept()
        except OSError:
            if server.fileno() == -1:  # the listening socket was closed: the relay is being stopped
                return
            continue  # a connection aborted before it was accepted, or out of descriptors for a moment
        if ipaddress.ip_address(peer) not in allowed:
            conn.close()
            continue
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            conn.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()


def main(args: list[str] | None = None) -> None:
    """``python -m berth.sandbox.kubeproxy --listen IP:PORT --to IP:PORT --allow CIDR``: the relay."""
    parser = argparse.ArgumentParser(prog="python -m berth.sandbox.kubeproxy")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--allow", required=True)
    ns = parser.parse_args(args)

    def split(value: str) -> tuple[str, int]:
        host, _, port = value.rpartition(":")
        return host, int(port)

    relay(split(ns.listen), split(ns.to), ns.allow)


if __name__ == "__main__":
    main()
