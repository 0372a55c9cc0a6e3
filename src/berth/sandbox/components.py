"""The control plane's processes: each one's command line and health endpoint, in start order.

One table, read top to bottom the way the sandbox starts them. Every component is a
personality of the multi-call ``kube`` binary ``tools/kube/build.sh`` builds (``kube etcd
…``, ``kube kwok …``). Arguments are :meth:`str.format` templates over :class:`Layout`:
``{dir}`` the state directory, ``{port[NAME]}`` the ports chosen at ``up``, ``{pki.FILE}``
the certificates of :class:`berth.sandbox.pki.Pki`, ``{server}`` the API server URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from berth.sandbox.pki import Pki

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the `kubernetes` Service, in the serving cert
POD_CIDR = "10.244.0.0/16"
# Ports picked free at `up`, saved in the state so a restarted component binds the same ones.
PORTS = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Component:
    """One process of the control plane.

    ``health``: a URL that answers 2xx once the process serves (None: kwok, whose fake
    nodes turning Ready is the proof). ``gate``: the next component starts only after this
    one is healthy (the API server needs etcd; everything else needs the API server).
    """

    name: str
    args: tuple[str, ...]
    health: str | None = None
    gate: bool = False


COMPONENTS: tuple[Component, ...] = (
    Component(
        "etcd",
        (
            "--name=sandbox",
            "--data-dir={dir}/etcd",
            "--listen-client-urls=http://127.0.0.1:{port[etcd]}",
            "--advertise-client-urls=http://127.0.0.1:{port[etcd]}",
            "--listen-peer-urls=http://127.0.0.1:{port[etcd-peer]}",
            "--initial-advertise-peer-urls=http://127.0.0.1:{port[etcd-peer]}",
            "--initial-cluster=sandbox=http://127.0.0.1:{port[etcd-peer]}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ),
        health="http://127.0.0.1:{port[etcd]}/health",
        gate=True,
    ),
    Component(
        "kube-apiserver",
        (
            "--etcd-servers=http://127.0.0.1:{port[etcd]}",
            "--bind-address=127.0.0.1",
            "--secure-port={port[kube-apiserver]}",
            "--tls-cert-file={pki.serving_cert}",
            "--tls-private-key-file={pki.serving_key}",
            "--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file={pki.sa_pub}",
            "--service-account-signing-key-file={pki.sa_key}",
            "--profiling=false",
            "--requestheader-client-ca-file={pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--proxy-client-cert-file={pki.front_proxy_cert}",
            "--proxy-client-key-file={pki.front_proxy_key}",
            "--kubelet-client-certificate={pki.kubelet_client_cert}",
            "--kubelet-client-key={pki.kubelet_client_key}",
            # Real nodes' names do not resolve; their InternalIP is their bridge's gateway address.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ),
        health="{server}/readyz",
        gate=True,
    ),
    Component(
        "kube-controller-manager",
        (
            "--kubeconfig={dir}/controller-manager.kubeconfig",
            "--authentication-kubeconfig={dir}/controller-manager.kubeconfig",
            "--authorization-kubeconfig={dir}/controller-manager.kubeconfig",
            "--bind-address=127.0.0.1",
            "--secure-port={port[kube-controller-manager]}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file={pki.sa_key}",
            "--root-ca-file={pki.ca_cert}",
            "--cluster-signing-cert-file={pki.ca_cert}",
            "--cluster-signing-key-file={pki.ca_key}",
            # Provisions host-path volumes under /tmp/hostpath_pv, so StatefulSet claims really bind.
            "--enable-hostpath-provisioner=true",
            # The defaults (20 QPS) make a 100-replica StatefulSet crawl; a sandbox has no neighbours.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--concurrent-statefulset-syncs=10",
        ),
        health="https://127.0.0.1:{port[kube-controller-manager]}/healthz",
    ),
    Component(
        "kube-scheduler",
        (
            "--config={dir}/scheduler.yaml",
            "--authentication-kubeconfig={dir}/scheduler.kubeconfig",
            "--authorization-kubeconfig={dir}/scheduler.kubeconfig",
            "--bind-address=127.0.0.1",
            "--secure-port={port[kube-scheduler]}",
        ),
        health="https://127.0.0.1:{port[kube-scheduler]}/healthz",
    ),
    Component(
        "kwok",
        (
            "--kubeconfig={dir}/kwok.kubeconfig",
            "--config={dir}/kwok-stages.yaml",
            # Only the fake nodes: a real node (`up --kubelet`) has its own kubelet.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
        ),
    ),
)
NAMES = tuple(c.name for c in COMPONENTS)


@dataclass(frozen=True)
class Layout:
    """Where one sandbox's files and ports are: what the templates above are filled from."""

    dir: Path
    port: dict[str, int]
    pki: Pki
    server: str

    def argv(self, kube: Path, component: Component) -> list[str]:
        """The full command line: the multi-call binary, the component's name, its arguments."""
        return [str(kube), component.name, *(self.fill(arg) for arg in component.args)]

    def fill(self, template: str) -> str:
        """One template with this sandbox's values."""
        return template.format(dir=self.dir, port=self.port, pki=self.pki, server=self.server)


# ---- real nodes (`berth sandbox up --kubelet`) ---------------------------------------------------
# Filled by :meth:`berth.sandbox.node.RealNodes.argv` from ``{node}`` (the node's directory),
# ``{index}``, ``{ip}`` (its bridge gateway: node IP and kubelet address), ``{name}`` (the Node),
# ``{labels}``, ``{nodes}`` (``<state>/nodes``), ``{dir}``. ``binary`` None: the ``kube``
# multi-call binary; ``mount_ns``: run inside the sandbox's own mount namespace (``nsenter``).
@dataclass(frozen=True)
class NodeComponent:
    """One process of the real nodes; ``per_node``: one per kubelet node, else one per sandbox."""

    name: str
    binary: str | None
    args: tuple[str, ...]
    per_node: bool = True
    mount_ns: bool = True


NODE_COMPONENTS: tuple[NodeComponent, ...] = (
    # Holds the mount namespace containerd and the kubelets share: /run, /var/lib and /var/log
    # are tmpfs there (CNI's cache, shim sockets, /var/log/containers never touch the host's),
    # and <state>/nodes is an rshared bind mount (kubelet's mount propagation). When its last
    # process dies every mount in it goes away: a crash cannot leave mounts on the host.
    NodeComponent(
        "mount-namespace",
        "unshare",
        (
            "--mount",
            "--propagation=unchanged",
            "--",
            "/bin/sh",
            "-ec",
            "mount -t tmpfs -o mode=0755 berth-run /run; "
            "mount -t tmpfs -o mode=0755 berth-var-lib /var/lib; "
            "mount -t tmpfs -o mode=0755 berth-var-log /var/log; "
            "mount --bind {nodes} {nodes}; mount --make-rshared {nodes}; "
            "touch {nodes}/mount-namespace.ready; exec sleep infinity",
        ),
        per_node=False,
        mount_ns=False,
    ),
    NodeComponent("containerd", "containerd", ("--config={node}/containerd.toml", "--log-level=warn")),
    NodeComponent("coredns", "coredns", ("-conf={nodes}/Corefile",), per_node=False, mount_ns=False),
    NodeComponent(
        "kubelet",
        None,
        (
            "kubelet",
            "--config={node}/kubelet.yaml",
            "--kubeconfig={node}/kubelet.kubeconfig",
            "--root-dir={node}/kubelet",
            "--hostname-override={name}",
            "--node-ip={ip}",
            "--node-labels={labels}",
            "--v=1",
        ),
    ),
    # ``local`` PVs for the default StorageClass (berth.sandbox.provisioner): the kubelet applies a
    # pod's fsGroup to those, never to the control plane's hostPath volumes.
    NodeComponent(
        "provisioner",
        "python",
        ("-m", "berth.sandbox.provisioner", "--kubeconfig={dir}/kubeconfig", "--root={dir}/volumes"),
        per_node=False,
        mount_ns=False,
    ),
)
