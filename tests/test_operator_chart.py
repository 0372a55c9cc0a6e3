"""The Helm chart equals the install manifests; the Argo CD health check reads the operator's status.

- The committed ``charts/berth-operator`` is what ``berth operator chart`` generates (drift).
- A real ``helm`` (built from its Go module by charts/build-helm.sh, cached outside the repo; CI
  exports $BERTH_HELM) lints the chart and its ``helm template`` output equals
  ``berth operator install --dry-run``'s objects for the same namespace, image and replicas.
- ``deploy/argocd/trainingcluster-health.lua`` runs in Lua 5.1 (lupa; Argo CD's gopher-lua is 5.1)
  on statuses that :func:`berth.operator.reconcile.status_of` itself writes.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.operator.chart import files
from berth.operator.manifests import manifests
from berth.operator.reconcile import Outcome, status_of

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "berth-operator"
HEALTH = ROOT / "deploy" / "argocd" / "trainingcluster-health.lua"


def test_committed_chart_is_the_generated_one() -> None:
    want = files()
    have = {str(p.relative_to(CHART)): p.read_text() for p in CHART.rglob("*") if p.is_file()}
    assert sorted(have) == sorted(want), "run: berth operator chart charts/berth-operator"
    for name, text in want.items():
        assert have[name] == text, f"{name} drifted: run `berth operator chart charts/berth-operator`"


@pytest.fixture(scope="module")
def helm() -> Path:
    explicit = os.environ.get("BERTH_HELM")
    if explicit:
        assert Path(explicit).is_file(), f"BERTH_HELM={explicit} does not exist (charts/build-helm.sh)"
        return Path(explicit)
    built = subprocess.run([str(ROOT / "charts" / "build-helm.sh"), "--print"], capture_output=True, text=True)
    path = Path(built.stdout.strip())
    if not path.is_file():
        pytest.skip("helm not built: run charts/build-helm.sh (CI sets BERTH_HELM)")
    return path


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def test_helm_lint_and_template_equal_the_install_manifests(helm: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HELM_CACHE_HOME": str(tmp_path), "HELM_CONFIG_HOME": str(tmp_path)}
    lint = subprocess.run([str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True, env=env)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 chart(s) failed" in lint.stdout

    def template(*args: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [str(helm), "template", "berth", str(CHART), "--include-crds", *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return sorted((d for d in yaml.safe_load_all(done.stdout) if d), key=key)

    rendered = template("-n", "ml-ops", "--set", "createNamespace=true", "--set", "image=reg.example/b:1.2",
                        "--set", "replicas=3")  # fmt: skip
    assert rendered == sorted(manifests(namespace="ml-ops", image="reg.example/b:1.2", replicas=3), key=key)
    defaults = template("-n", "berth-system")
    assert defaults == sorted([o for o in manifests() if o["kind"] != "Namespace"], key=key)


def health(obj: dict[str, Any]) -> dict[str, str]:
    lupa = pytest.importorskip("lupa.lua51", reason="lupa is a dev dependency")
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    lua.globals().obj = table(obj)
    result = lua.execute(HEALTH.read_text())
    return {"status": result["status"], "message": result["message"]}


def cr(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "x", "namespace": "ml", "generation": generation},
        "spec": {"replicas": 2},
    }
    if status is not None:
        body["status"] = status
    return body


def written(outcome: Outcome, generation: int = 1) -> dict[str, Any]:
    """A CR whose status is what the operator writes for ``outcome``."""
    return cr(generation, status_of(cr(generation, None), outcome))


def with_condition(body: dict[str, Any], kind: str, on: bool, reason: str, message: str = "") -> dict[str, Any]:
    """A copy of ``body`` with one condition set (as later reconciles of a running cluster write it)."""
    body = copy.deepcopy(body)
    for cond in body["status"]["conditions"]:
        if cond["type"] == kind:
            cond.update(status="True" if on else "False", reason=reason, message=message)
    return body


def test_argocd_health_follows_the_operator_status() -> None:
    assert health(cr(1, None))["status"] == "Progressing"
    # Status of an older generation: the operator has not seen the edit yet.
    stale = written(Outcome())
    stale["metadata"]["generation"] = 2
    assert health(stale) == {
        "status": "Progressing",
        "message": "Waiting for the berth operator to observe generation 2",
    }
    # Applied, no pods yet (no cluster state): the operator's own Progressing/RollingOut.
    assert health(written(Outcome()))["status"] == "Progressing"
    # A spec only the controller can reject: Degraded, with the located message.
    bad = health(written(Outcome(error="spec.volumes.data.size: 'lots' is not a quantity")))
    assert bad == {"status": "Degraded", "message": "InvalidSpec: spec.volumes.data.size: 'lots' is not a quantity"}
    shrink = health(written(Outcome(error="spec.volumes.data.size: cannot shrink", reason="ResizeRefused")))
    assert shrink["status"] == "Degraded" and shrink["message"].startswith("ResizeRefused: ")

    ready = with_condition(written(Outcome()), "Ready", True, "AllRanksReady", "2/2 pods ready")
    ready = with_condition(ready, "Progressing", False, "Settled")
    assert health(ready) == {"status": "Healthy", "message": "AllRanksReady: 2/2 pods ready"}
    drift = with_condition(ready, "Degraded", True, "DriftCorrected", "StatefulSet x: spec.replicas")
    assert health(drift)["status"] == "Healthy"  # set back in the same pass
    growing = with_condition(ready, "Progressing", True, "VolumesResizing", "claim d-x-0: 3Gi requested, 1Gi")
    assert health(growing) == {"status": "Progressing", "message": "VolumesResizing: claim d-x-0: 3Gi requested, 1Gi"}
    done = with_condition(with_condition(ready, "Succeeded", True, "RunSucceeded"), "Ready", False, "RanksNotReady")
    assert health(done)["status"] == "Healthy"
    failed = with_condition(ready, "Failed", True, "BackoffLimitExceeded", "rank 1 exited 3")
    assert health(failed) == {"status": "Degraded", "message": "BackoffLimitExceeded: rank 1 exited 3"}
