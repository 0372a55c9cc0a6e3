"""CoreDNS for the sandbox's real nodes: the binary (``tools/coredns/build.sh``) and its Corefile.

CoreDNS runs as a host process listening on port 53 of node 0's bridge gateway address, which
every pod reaches without kube-proxy: that address is the kubelets' ``clusterDNS``. It serves
``cluster.local`` from the API server (the ``kubernetes`` plugin: Services, and a headless
Service's pods as ``<hostname>.<service>.<ns>.svc.cluster.local``) and forwards the rest to the
host's resolver.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth.sandbox.binaries import Progress, build_binary, built_binary, checkout_script, quiet

CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 53
# What CoreDNS's kubernetes plugin reads (the ClusterRole kubeadm gives CoreDNS, read-only).
RBAC_RULES = [
    {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
]
CLIENT = "coredns"  # the pki client name; its certificate's CN is the RBAC user
USER = "system:berth-sandbox:coredns"


def build_script() -> Path | None:
    """``tools/coredns/build.sh`` of the source checkout berth runs from, if any."""
    return checkout_script("coredns", "build.sh")


def find_binary() -> Path | None:
    """The built CoreDNS: ``$BERTH_COREDNS_BIN`` (a bin directory), else where build.sh puts it."""
    found = built_binary(build_script(), "BERTH_COREDNS_BIN", "coredns")
    if found is not None or os.environ.get("BERTH_COREDNS_BIN"):
        return found
    cache = Path(os.environ.get("BERTH_COREDNS_CACHE", Path.home() / ".cache" / "berth" / "coredns"))
    builds = sorted(cache.glob("*/bin/coredns"), key=lambda p: p.stat().st_mtime, reverse=True)
    return builds[0] if builds else None


def build(progress: Progress = quiet) -> Path:
    """Run tools/coredns/build.sh (a no-op when built); return the binary."""
    return build_binary(
        build_script(), "coredns", "CoreDNS", progress, "set BERTH_COREDNS_BIN to a built bin directory"
    )


def corefile(listen_ip: str, kubeconfig: Path, health_port: int, ready_port: int) -> str:
    """The Corefile: the cluster domain from the API, everything else to the host's resolver."""
    return f""".:{DNS_PORT} {{
    bind {listen_ip}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    forward . /etc/resolv.conf
    cache 5
}}
"""
