"""The sandbox's pure parts: the component table, its state file, status JSON. No binaries needed."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from berth.sandbox import Sandbox, SandboxState
from berth.sandbox.cluster import NodeSpec
from berth.sandbox.components import COMPONENTS, NAMES, PORTS, Layout
from berth.sandbox.pki import Pki
from berth.sandbox.proc import ProcessRecord, free_ports


def _layout(tmp_path: Path) -> Layout:
    ports = {name: 10000 + i for i, name in enumerate(PORTS)}
    return Layout(dir=tmp_path, port=ports, pki=Pki(tmp_path / "pki"), server="https://127.0.0.1:10002")


def test_components_start_in_dependency_order() -> None:
    assert NAMES == ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    # etcd and the API server must answer before anything that needs them starts.
    assert [c.name for c in COMPONENTS if c.gate] == ["etcd", "kube-apiserver"]
    assert [c.name for c in COMPONENTS if c.health is None] == ["kwok"]


def test_every_template_is_filled_from_the_layout(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    argvs = {c.name: layout.argv(tmp_path / "bin" / "kube", c) for c in COMPONENTS}
    for name, argv in argvs.items():
        assert argv[:2] == [str(tmp_path / "bin" / "kube"), name]  # the multi-call binary's personality
        assert not [a for a in argv if "{" in a or "}" in a], name
    etcd, apiserver = argvs["etcd"], argvs["kube-apiserver"]
    assert f"--data-dir={tmp_path}/etcd" in etcd
    assert "--listen-client-urls=http://127.0.0.1:10000" in etcd
    assert "--initial-cluster=sandbox=http://127.0.0.1:10001" in etcd
    assert "--etcd-servers=http://127.0.0.1:10000" in apiserver and "--secure-port=10002" in apiserver
    assert f"--tls-cert-file={tmp_path}/pki/apiserver.crt" in apiserver
    assert f"--proxy-client-key-file={tmp_path}/pki/front-proxy-client.key" in apiserver
    assert "--service-cluster-ip-range=10.96.0.0/16" in apiserver
    assert f"--kubeconfig={tmp_path}/controller-manager.kubeconfig" in argvs["kube-controller-manager"]
    assert "--secure-port=10004" in argvs["kube-scheduler"] and "--cidr=10.244.0.0/16" in argvs["kwok"]
    health = {c.name: layout.fill(c.health) for c in COMPONENTS if c.health}
    assert health == {
        "etcd": "http://127.0.0.1:10000/health",
        "kube-apiserver": "https://127.0.0.1:10002/readyz",
        "kube-controller-manager": "https://127.0.0.1:10003/healthz",
        "kube-scheduler": "https://127.0.0.1:10004/healthz",
    }


def test_state_file_round_trips(tmp_path: Path) -> None:
    record = ProcessRecord(name="etcd", pid=42, start_ticks=7, log=str(tmp_path / "etcd.log"), argv=["kube", "etcd"])
    state = SandboxState(
        name="t",
        state_dir=tmp_path,
        bin_dir=tmp_path / "bin",
        server="https://127.0.0.1:1",
        kubeconfig=tmp_path / "kubeconfig",
        ports={"etcd": 1},
        processes=[record],
        started_at=1.5,
        ready_after_s=3.0,
    )
    data = json.loads(json.dumps(state.to_json()))
    assert data["state_dir"] == str(tmp_path) and data["processes"][0]["start_ticks"] == 7
    assert SandboxState.from_json(data) == state


def test_status_of_an_absent_sandbox_is_camel_case_json(tmp_path: Path) -> None:
    status = Sandbox("t", tmp_path / "none").status()
    assert not status.exists and not status.running
    assert status.to_json() == {
        "name": "t",
        "stateDir": str(tmp_path / "none"),
        "exists": False,
        "running": False,
        "apiReady": False,
        "server": None,
        "kubeconfig": None,
        "version": None,
        "processes": [],
    }


def test_fake_nodes_spread_over_zones() -> None:
    nodes = NodeSpec(nodes=3, zones=2, gpus=4).manifests()
    assert [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes] == ["zone-a", "zone-b", "zone-a"]
    assert {n["status"]["allocatable"]["nvidia.com/gpu"] for n in nodes} == {"4"}


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_sandbox_names_are_usage_errors(name: str) -> None:
    from berth.errors import UsageError

    with pytest.raises(UsageError):
        Sandbox(name)


def test_berths_client_verifies_the_sandbox_ca_and_presents_the_admin_cert(tmp_path: Path) -> None:
    """The transport berth's Kube builds from a kubeconfig does mutual TLS like lightkube's own did."""
    import http.server
    import ssl
    import threading

    from berth.kube.client import RetryPolicy, Target, connect
    from berth.sandbox.components import SERVICE_IP
    from berth.sandbox.pki import generate, write_kubeconfig

    pki = generate(tmp_path / "pki", SERVICE_IP)
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cert = self.connection.getpeercert()  # type: ignore[attr-defined]
            seen.append(dict(x[0] for x in cert["subject"])["commonName"])
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    ctx.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        write_kubeconfig(tmp_path / "kubeconfig", pki, "admin", url, "ctx")
        kube = connect(Target(str(tmp_path / "kubeconfig")), retry=RetryPolicy(budget_s=0))
        assert kube.raw_get("/readyz").text == "ok"
        assert seen == ["berth-sandbox-admin"] and kube.requests == 1
        kube.close()
    finally:
        server.shutdown()
        server.server_close()


# ---- --kube-proxy's parts (berth.sandbox.kubeproxy): the host slot, the relay, the pods' route ----


def test_kube_proxy_slot_is_one_sandbox_per_host_while_its_kube_proxy_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from berth.errors import BerthError
    from berth.sandbox import kubeproxy

    monkeypatch.setattr(kubeproxy, "SLOT", tmp_path / "slot.json")
    fake = tmp_path / "kube-proxy"  # a live process whose command line names kube-proxy
    fake.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(fake), "30"])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(500):  # until the child has exec'd: before that its command line is still ours
        if b"kube-proxy" in cmdline.read_bytes():
            break
        time.sleep(0.01)
    try:
        kubeproxy.claim(tmp_path / "a")
        kubeproxy.record_pid(tmp_path / "a", proc.pid)
        with pytest.raises(BerthError, match=rf"sandbox in {tmp_path / 'a'} \(pid {proc.pid}\)") as err:
            kubeproxy.claim(tmp_path / "b")
        assert err.value.exit_code == 2
        kubeproxy.release(tmp_path / "b", None)  # not b's: untouched
        assert kubeproxy.SLOT.exists()
    finally:
        proc.kill()
        proc.wait()
    kubeproxy.claim(tmp_path / "b")  # its kube-proxy is gone (a crash): the slot is free again
    kubeproxy.release(tmp_path / "b", None)
    assert not kubeproxy.SLOT.exists()


def test_relay_forwards_only_from_the_allowed_subnet() -> None:
    import socket
    import threading

    from berth.sandbox import kubeproxy

    upstream = socket.create_server(("127.0.0.1", 0))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def echo() -> None:
        while True:
            try:
                conn, _ = upstream.accept()
            except OSError:  # the test closed the server: done
                return
            conn.sendall(conn.recv(100).upper())
            conn.close()

    threading.Thread(target=echo, daemon=True).start()
    target = upstream.getsockname()
    threading.Thread(
        target=kubeproxy.relay, args=(("127.0.0.1", port), target, "127.0.0.2/32", listener), daemon=True
    ).start()
    allowed = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
    allowed.sendall(b"ping")
    assert allowed.recv(100) == b"PING"
    refused = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.1", 0))
    try:  # closed without a byte from the API server: an orderly close, or a reset if our bytes arrived first
        refused.sendall(b"ping")
        got = refused.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    assert got == b""
    for s in (allowed, refused, listener, upstream):
        s.close()


def test_pods_get_a_route_to_the_service_cidr_only_with_kube_proxy(tmp_path: Path) -> None:
    from berth.sandbox import containerd
    from berth.sandbox.components import SERVICE_CIDR

    args = (tmp_path, 0, "berth0", "10.200.0.0/16", "10.200.0.1", ("10.200.1.1", "10.200.1.254"))
    plain = json.loads(containerd.cni_config(*args))
    assert "routes" not in plain["plugins"][0]["ipam"]
    routed = json.loads(containerd.cni_config(*args, SERVICE_CIDR))
    assert routed["plugins"][0]["ipam"]["routes"] == [{"dst": "10.96.0.0/16", "gw": "10.200.0.1"}]


def test_a_taken_pods_network_moves_to_the_next_free_one_and_stays_there(tmp_path: Path) -> None:
    """Two sandboxes whose state dirs hash to one /16 (1 in 40) both start: the second takes the next."""
    import os
    import subprocess
    import uuid

    from berth.sandbox.node import SUBNET_FILE, RealNodes

    if os.geteuid() != 0:
        pytest.skip("adding a network interface needs root")
    nodes = RealNodes(tmp_path / "s", "subnet", 1)
    preferred = nodes.subnet
    link = f"bt{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    try:
        gateway = preferred.replace("0.0/16", "0.1")
        subprocess.run(["ip", "addr", "add", f"{gateway}/32", "dev", link], check=True)
        nodes.reserve_subnet()
        moved = nodes.subnet
        assert moved != preferred and int(moved.split(".")[1]) in range(200, 240)
        assert RealNodes(tmp_path / "s", "subnet", 1).gateway == moved.replace("0.0/16", "0.1")  # later calls agree
        assert (tmp_path / "s" / "nodes" / SUBNET_FILE).read_text().strip() == moved.split(".")[1]
    finally:
        subprocess.run(["ip", "link", "del", link], check=False)
    free = RealNodes(tmp_path / "t", "subnet", 1)
    free.reserve_subnet()  # nothing in the way: the hash's /16, and nothing written
    assert not (tmp_path / "t").exists()


def test_an_empty_leftover_chain_goes_and_one_with_rules_stays() -> None:
    """kube-proxy --cleanup empties its filter chain but keeps it and the jumps to it: release removes those."""
    import os
    import shutil
    import subprocess
    import uuid

    from berth.sandbox import kubeproxy

    if os.geteuid() != 0 or shutil.which("iptables") is None:
        pytest.skip("needs root and iptables")

    def iptables(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["iptables", *args], capture_output=True, text=True, check=False)

    empty, kept = f"BT-{uuid.uuid4().hex[:8]}", f"BT-{uuid.uuid4().hex[:8]}"
    try:
        for chain in (empty, kept):
            assert iptables("-N", chain).returncode == 0
            assert iptables("-A", "OUTPUT", "-j", chain).returncode == 0
        assert iptables("-A", kept, "-d", "192.0.2.1/32", "-j", "RETURN").returncode == 0
        kubeproxy._drop_empty_chain(empty)
        kubeproxy._drop_empty_chain(kept)
        assert iptables("-S", empty).returncode != 0 and f"-j {empty}" not in iptables("-S", "OUTPUT").stdout
        assert iptables("-S", kept).returncode == 0 and f"-j {kept}" in iptables("-S", "OUTPUT").stdout
    finally:
        for chain in (empty, kept):
            iptables("-D", "OUTPUT", "-j", chain)
            iptables("-F", chain)
            iptables("-X", chain)


def test_servers_ports_are_never_a_clients_source_port() -> None:
    """A port from the ephemeral range can be handed to a client retrying connect to it while its server
    restarts; the client then connects to itself and holds the port (CI of stop 17 lost SeaweedFS so)."""
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = free_ports(40, paired=10000)
    assert len(set(ports)) == 40
    for port in ports:
        assert not low <= port <= high and not low <= port + 10000 <= high, (port, low, high)
        with socket.socket() as a, socket.socket() as b:  # each port and its pair can still be bound
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 10000))
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", ports[0]))
        assert all(ports[0] not in free_ports(5) for _ in range(200))
    finally:
        taken.close()
