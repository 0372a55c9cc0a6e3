"""Fixtures for tests against the real control plane (`berth sandbox`).

Use in any test under tests/cluster/:

    def test_something(sandbox, kube_client, namespace): ...

- ``sandbox`` (session): a running :class:`berth.sandbox.SandboxState`; ``.kubeconfig``
  (Path), ``.server`` (https URL), ``.bin_dir / "kubectl"``. Started once per session (per
  xdist worker), stopped by PID at the end. 3 kwok nodes over zone-a/zone-b with 8
  nvidia.com/gpu each; default StorageClass ``standard`` (host-path, WaitForFirstConsumer).
- ``kubeconfig`` (session): the admin kubeconfig Path (also exported as $KUBECONFIG for
  subprocesses such as `berth up` and kubectl).
- ``kubectl`` (session): Path of the kubectl built with the control plane.
- ``kube_client`` (session): a lightkube ``Client`` on the sandbox (admin).
- ``namespace`` (function): name of a fresh namespace for this test, deleted afterwards.
- ``make_namespace`` (function): ``make_namespace(labels=None) -> str`` for more namespaces or
  labelled ones (e.g. Pod Security ``enforce: restricted``); all deleted afterwards.
- ``cluster`` (session): real pods — a second sandbox with two real kubelets (no kwok node) and the
  runtime image imported, as a :class:`tests.cluster.real_pods.Cluster`; started on first use.
- ``up`` (function): ``up(spec_document) -> stdout`` runs `berth up` on ``cluster`` and `berth down
  --delete-volumes --yes` afterwards (spec documents from ``real_pods.spec``).

Skips only when the binaries are not built AND $BERTH_REQUIRE_CLUSTER is unset; CI builds them
first (tools/kube/build.sh) and sets BERTH_REQUIRE_CLUSTER=1, so there a missing build fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.sandbox import Sandbox, SandboxState, find_bin_dir

from .real_pods import Cluster, start_cluster, up_and_down


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "control-plane binaries not built: run tools/kube/build.sh"
        if os.environ.get("BERTH_REQUIRE_CLUSTER"):
            pytest.fail(f"BERTH_REQUIRE_CLUSTER is set but {reason}")
        pytest.skip(reason)
    box = Sandbox("pytest", tmp_path_factory.mktemp("sandbox"))
    state = box.up(bin_dir=bin_dir, timeout_s=120)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(state.kubeconfig)
    try:
        yield state
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        box.down()


@pytest.fixture(scope="session")
def kubeconfig(sandbox: SandboxState) -> Path:
    return sandbox.kubeconfig


@pytest.fixture(scope="session")
def kubectl(sandbox: SandboxState) -> Path:
    return sandbox.bin_dir / "kubectl"


@pytest.fixture(scope="session")
def kube_client(sandbox: SandboxState) -> Any:
    from lightkube import Client, KubeConfig

    return Client(KubeConfig.from_file(sandbox.kubeconfig), field_manager="berth-tests")


@pytest.fixture
def make_namespace(kube_client: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    created: list[str] = []
    # Namespace names: the test name (readable in logs) plus a random suffix (unique per call).
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:40].strip("-")

    def make(labels: dict[str, str] | None = None) -> str:
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        kube_client.create(Namespace(metadata=ObjectMeta(name=name, labels=labels or {})))
        created.append(name)
        return name

    yield make
    for name in created:
        kube_client.delete(Namespace, name)


@pytest.fixture
def namespace(make_namespace: Callable[..., str]) -> str:
    return make_namespace()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    yield from start_cluster()


@pytest.fixture
def up(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    yield from up_and_down(cluster, tmp_path)
