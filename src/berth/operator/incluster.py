"""Running in a pod: a kubeconfig for the pod's ServiceAccount, so berth's client and kopf share it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def kubeconfig_for_pod() -> str | None:
    """Path of a kubeconfig built from the mounted ServiceAccount token; None outside a pod."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if os.environ.get("KUBECONFIG") or not host or not (SA_DIR / "token").is_file():
        return None
    import yaml

    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    namespace = (SA_DIR / "namespace").read_text().strip() if (SA_DIR / "namespace").is_file() else "default"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "in-cluster", "cluster": {"server": server, "certificate-authority": str(SA_DIR / "ca.crt")}}
        ],
        "users": [{"name": "operator", "user": {"tokenFile": str(SA_DIR / "token")}}],
        "contexts": [
            {"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "operator", "namespace": namespace}}
        ],
        "current-context": "in-cluster",
    }
    fd, path = tempfile.mkstemp(prefix="berth-operator-", suffix=".kubeconfig")
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(doc, out)
    return path
