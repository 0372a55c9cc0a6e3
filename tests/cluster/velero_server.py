"""A real `velero server` (built by tools/velero/build.sh) run as a local process against the sandbox.

Velero runs outside the cluster: ``--kubeconfig`` to the sandbox's API server, its AWS object-store
plugin from ``--plugin-dir``, a BackupStorageLocation on a SeaweedFS bucket. No node-agent (no file
system backup) and no CSI driver, so backups are taken with ``snapshotVolumes: false``: the objects
go to the bucket, the volumes' data does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..runtime.conftest import ACCESS_KEY, SECRET_KEY, Seaweed, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "velero" / "build.sh"
API = "/apis/velero.io/v1"


def velero_bin_dir() -> Path:
    """$BERTH_VELERO (set by .ci/run), else where tools/velero/build.sh puts the binaries; fails or skips if unbuilt."""
    given = os.environ.get("BERTH_VELERO")
    found = Path(given) if given else Path(subprocess.check_output([str(BUILD), "--print-bin-dir"], text=True).strip())
    if (found / "velero").is_file() and (found / "plugins" / "velero-plugin-for-aws").is_file():
        return found
    reason = f"velero is not built in {found}: run tools/velero/build.sh"
    if given or os.environ.get("BERTH_REQUIRE_CLUSTER"):
        pytest.fail(reason)
    pytest.skip(reason)


def velero_crds(bin_dir: Path) -> list[dict[str, Any]]:
    """Velero's own CRDs, as `velero install --crds-only --dry-run -o yaml` wrote them at build time."""
    doc = yaml.safe_load((bin_dir / "crds.yaml").read_text())
    items: list[dict[str, Any]] = doc["items"]
    return items


@dataclass
class VeleroServer:
    """A running `velero server` in ``namespace``; ``http`` is an admin HTTP client on the API server."""

    namespace: str
    bucket: str
    seaweed: Seaweed
    http: Any
    proc: subprocess.Popen[bytes]
    log: Path

    def objects(self, plural: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"{API}/namespaces/{self.namespace}/{plural}")
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def get(self, plural: str, name: str) -> dict[str, Any]:
        resp = self.http.get(f"{API}/namespaces/{self.namespace}/{plural}/{name}")
        assert resp.status_code == 200, resp.text
        got: dict[str, Any] = resp.json()
        return got

    def alive(self) -> None:
        assert self.proc.poll() is None, f"velero server exited {self.proc.returncode}: {self.tail()}"

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def keys(self, prefix: str) -> list[str]:
        """The object keys under ``prefix`` in the location's bucket, read with boto3 from SeaweedFS."""
        listed = self.seaweed.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))


def _resources(crds: list[dict[str, Any]], namespace: str) -> list[str]:
    """The namespaced collection URL of each CRD's served version (velero.io/v1 and v2alpha1)."""
    return [
        f"/apis/{c['spec']['group']}/{c['spec']['versions'][0]['name']}/namespaces/{namespace}/{c['spec']['names']['plural']}"
        for c in crds
    ]


def _create_all(http: Any, path: str, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        resp = http.post(path, content=json.dumps(doc), headers={"Content-Type": "application/json"})
        assert resp.status_code == 201, resp.text


def _wait(what: str, check: Any, timeout: float, server: VeleroServer | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if server is not None:
            server.alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (
            f"; velero log: {server.tail()}" if server else ""
        )
        time.sleep(0.3)


@contextlib.contextmanager
def velero_server(http: Any, kubeconfig: Path, namespace: str, work: Path, weed: str) -> Iterator[VeleroServer]:
    """Velero's CRDs, its namespace, SeaweedFS with a bucket, the BSL ``default``, then `velero server`.

    Teardown (also after a failure): the server's process group is stopped by PID (SIGTERM, then
    SIGKILL: its plugins are child processes), finalizers Velero put on its objects are removed (no
    server is left to honour them), the CRDs and namespace are deleted and awaited (later tests in
    the session expect velero.io not to be served), SeaweedFS is killed.
    """
    bin_dir = velero_bin_dir()
    crds = velero_crds(bin_dir)
    seaweed = Seaweed(weed, work / "weed")
    (work / "weed").mkdir()
    proc: subprocess.Popen[bytes] | None = None
    try:
        _create_all(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crds)
        seaweed.start()
        bucket = seaweed.bucket("velero")
        _create_all(
            http, "/api/v1/namespaces", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
        )
        for url in _resources(crds, namespace):  # Established is not served yet: 404/429 a moment
            _wait(f"{url} served", lambda u=url: http.get(u).status_code == 200, 30)
        # The AWS plugin's credentials file, from a Secret the BSL names (Velero writes it to a file
        # under $TMPDIR/credentials and hands the plugin its path).
        profile = f"[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cloud-credentials", "namespace": namespace},
            "stringData": {"cloud": profile},
        }
        _create_all(http, f"/api/v1/namespaces/{namespace}/secrets", [secret])
        location = {
            "apiVersion": "velero.io/v1",
            "kind": "BackupStorageLocation",
            "metadata": {"name": "default", "namespace": namespace},
            "spec": {
                "provider": "aws",
                "default": True,
                "objectStorage": {"bucket": bucket},
                "credential": {"name": "cloud-credentials", "key": "cloud"},
                "config": {"region": "us-east-1", "s3Url": seaweed.endpoint, "s3ForcePathStyle": "true"},
            },
        }
        _create_all(http, f"{API}/namespaces/{namespace}/backupstoragelocations", [location])
        # Velero's pod restore action reads its own Deployment `velero` (the image for its
        # restore-helper init container) and fails every restore with pods without it. The
        # Deployment `velero install` makes, scaled to 0: this local process stands in for its pod.
        _create_all(http, f"/apis/apps/v1/namespaces/{namespace}/deployments", [_deployment(namespace)])
        tmp = work / "tmp"
        tmp.mkdir()
        log = work / "velero.log"
        args = [
            str(bin_dir / "velero"), "server", f"--kubeconfig={kubeconfig}", f"--namespace={namespace}",
            f"--plugin-dir={bin_dir / 'plugins'}", "--uploader-type=kopia", "--default-volumes-to-fs-backup=false",
            f"--metrics-address=127.0.0.1:{free_port()}", f"--profiler-address=127.0.0.1:{free_port()}",
            "--schedule-skip-immediately=true", "--store-validation-frequency=5s", "--log-level=info",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "TMPDIR": str(tmp), "KUBECONFIG": str(kubeconfig)},
            )
        server = VeleroServer(namespace, bucket, seaweed, http, proc, log)
        _wait(
            "BackupStorageLocation default Available",
            lambda: (server.get("backupstoragelocations", "default").get("status") or {}).get("phase") == "Available",
            60,
            server,
        )
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        _forget(http, namespace, crds)
        seaweed.kill()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # plugins left behind by a SIGTERMed server
        os.killpg(proc.pid, signal.SIGKILL)


def _forget(http: Any, namespace: str, crds: list[dict[str, Any]]) -> None:
    """Remove Velero's objects (their finalizers first), its CRDs and its namespace; wait until gone."""
    for url in _resources(crds, namespace):
        resp = http.get(url)
        for item in resp.json().get("items", []) if resp.status_code == 200 else []:
            if item["metadata"].get("finalizers"):
                http.patch(
                    f"{url}/{item['metadata']['name']}",
                    content=json.dumps({"metadata": {"finalizers": None}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
    for crd in crds:
        http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
    http.delete(f"/api/v1/namespaces/{namespace}")
    deadline = time.monotonic() + 60
    while http.get(API).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)


def _deployment(namespace: str) -> dict[str, Any]:
    labels = {"component": "velero", "deploy": "velero"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "velero", "namespace": namespace, "labels": {"component": "velero"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"deploy": "velero"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "velero", "image": "velero/velero:v1.18.3", "command": ["/velero"], "args": ["server"]}
                    ]
                },
            },
        },
    }
