"""The three API calls the in-pod supervisor makes, over the standard library only.

``berth run`` must start without lightkube (docs/architecture.md: runtime imports no
Kubernetes client), and it needs just three merge patches, all allowed by the Role berth
renders (docs/rbac.md): its own pod's ``berth.dev/run`` annotation, the StatefulSet's
``berth.dev/run`` annotation, and the StatefulSet's ``scale`` subresource.

Credentials are the pod's ServiceAccount (in-cluster config). A call the API refuses is
reported once per verb and resource (until one succeeds again), naming both, and never stops training: the supervisor
keeps running without publishing. Only a refusal (401/403) points at the Role; a pod that is already
gone (404 while the StatefulSet scales down or the pod is deleted) is not news at all: the pod's
annotation goes with it, and the StatefulSet's copy still says where the run is.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class ApiConfig:
    """Where the API server is and how to authenticate: the pod's ServiceAccount."""

    server: str
    token_file: Path
    ca_file: Path | None

    @classmethod
    def in_cluster(cls, environ: Mapping[str, str]) -> ApiConfig | None:
        """From KUBERNETES_SERVICE_HOST/PORT and the mounted token; None outside a pod or without a token.

        ``BERTH_API_SERVER``/``BERTH_API_TOKEN_FILE``/``BERTH_API_CA_FILE`` override them (tests run
        the supervisor as a local process against a real API server with a ServiceAccount token).
        """
        server = environ.get("BERTH_API_SERVER")
        if not server:
            host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
            if not host or not port:
                return None
            server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        token = Path(environ.get("BERTH_API_TOKEN_FILE") or SA_DIR / "token")
        if not token.is_file():
            return None
        ca = Path(environ.get("BERTH_API_CA_FILE") or SA_DIR / "ca.crt")
        return cls(server.rstrip("/"), token, ca if ca.is_file() else None)


@dataclass
class Api:
    """Merge patches with the ServiceAccount token; refusals are reported once through ``warn``."""

    config: ApiConfig
    timeout: float = 10.0
    warn: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))
    _reported: set[tuple[str, str]] = field(default_factory=set)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
        return ctx

    def patch(self, path: str, body: Mapping[str, Any], *, what: tuple[str, str], gone_is_quiet: bool = False) -> bool:
        """Merge-patch ``path``; True on success. ``what`` is (verb, resource) for the one-time report.

        ``gone_is_quiet``: a 404 is expected (the object is being deleted) and is not reported.
        """
        token = self.config.token_file.read_text().strip()  # re-read: the kubelet rotates it
        req = urllib.request.Request(
            self.config.server + path,
            data=json.dumps(body).encode(),
            method="PATCH",
            headers={"Authorization": f"Bearer {token}", "Content-Type": MERGE_PATCH, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._context()) as resp:
                resp.read()
            self._reported.discard(what)  # a later failure is news again
            return True
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                self._report(what, f"the API refused it ({err.code} {err.reason})", rbac=True)
            elif not (err.code == 404 and gone_is_quiet):
                self._report(what, f"{err.code} {err.reason}")
        except (OSError, ssl.SSLError) as err:
            self._report(what, f"the API server is unreachable: {err}")
        return False

    def _report(self, what: tuple[str, str], why: str, *, rbac: bool = False) -> None:
        """Say it once per verb and resource (until a call of it succeeds again); point at the Role on a refusal."""
        if what in self._reported:
            return
        self._reported.add(what)
        verb, resource = what
        hint = " (the Role berth renders grants it, see docs/rbac.md)" if rbac else ""
        self.warn(f"berth run: cannot {verb} {resource}: {why}; training continues without it{hint}")

    # -- the three calls ---------------------------------------------------------------------------

    def annotate_pod(self, namespace: str, pod: str, annotations: Mapping[str, str]) -> bool:
        """Set annotations on this pod (``patch pods/<pod>``)."""
        return self.patch(
            f"/api/v1/namespaces/{namespace}/pods/{pod}",
            {"metadata": {"annotations": dict(annotations)}},
            what=("patch", f"pods/{pod} in namespace {namespace}"),
            gone_is_quiet=True,  # deleted or scaled away: its annotation goes with it
        )

    def annotate_statefulset(self, namespace: str, name: str, annotations: Mapping[str, str]) -> bool:
        """Set annotations on the StatefulSet (``patch statefulsets/<name>``): survives scaling to zero."""
        return self.patch(
            f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
            {"metadata": {"annotations": dict(annotations)}},
            what=("patch", f"statefulsets/{name} in namespace {namespace}"),
        )

    def scale(self, namespace: str, name: str, replicas: int) -> bool:
        """Set the StatefulSet's replicas through its ``scale`` subresource."""
        return self.patch(
            f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale",
            {"spec": {"replicas": replicas}},
            what=("patch", f"statefulsets/{name}/scale in namespace {namespace}"),
        )


def from_env(environ: Mapping[str, str] | None = None) -> Api | None:
    """The pod's API access, or None where there is none (no token mounted, not in a pod)."""
    config = ApiConfig.in_cluster(os.environ if environ is None else environ)
    return Api(config) if config else None
