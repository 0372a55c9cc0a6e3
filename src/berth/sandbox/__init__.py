"""A local Kubernetes control plane (etcd, kube-apiserver, controllers, scheduler, kwok) to try berth on.

Built on ``berth.kube`` (it seeds and reads the cluster through berth's own client); nothing in
``berth.kube`` imports it. ``cluster`` runs one sandbox, ``components`` is the table of command
lines, ``binaries`` finds or builds them, ``pki`` and ``proc`` hold certificates and processes.
"""

from __future__ import annotations

from berth.sandbox.binaries import build, find_bin_dir
from berth.sandbox.cluster import NodeSpec, Sandbox, SandboxState, SandboxStatus

__all__ = ["NodeSpec", "Sandbox", "SandboxState", "SandboxStatus", "build", "find_bin_dir"]
