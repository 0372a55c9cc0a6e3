"""The pure parts of the cluster commands: diffs, claim names, verdicts, readiness, errors, retries.

No API server here: these run everywhere in milliseconds. Everything that needs one is in the
other files of this folder, against the real control plane.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import ApiError

from berth.errors import BerthError, UsageError
from berth.kube.claims import ClaimRef, parse_claim_name
from berth.kube.client import RetryPolicy, Target, connect
from berth.kube.diff import changed_paths, project, value_at
from berth.kube.errors import ApplyConflict, ClusterUnreachable, Forbidden, Invalid, NamespaceMissing, translate
from berth.kube.gc import judge
from berth.kube.status import ClaimRow, ClusterState, PodRow
from berth.kube.wait import readiness
from berth.sandbox.proc import free_ports

# ---- diff ---------------------------------------------------------------------------------------


def test_changed_paths_names_list_items_and_ignores_server_bookkeeping() -> None:
    live = {
        "metadata": {"name": "a", "resourceVersion": "1", "labels": {"app.kubernetes.io/name": "x"}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "trainer",
                            "env": [{"name": "BERTH_REPLICAS", "value": "3"}, {"name": "A", "value": "1"}],
                        }
                    ]
                }
            },
        },
        "status": {"replicas": 3},
    }
    after = json.loads(json.dumps(live))
    after["metadata"]["resourceVersion"] = "2"
    after["status"]["replicas"] = 5
    assert changed_paths(live, after) == []
    after["spec"]["replicas"] = 5
    after["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "5"
    after["metadata"]["labels"]["app.kubernetes.io/name"] = "y"
    paths = changed_paths(live, after)
    assert paths == [
        "metadata.labels[app.kubernetes.io/name]",
        "spec.replicas",
        "spec.template.spec.containers[trainer].env[BERTH_REPLICAS].value",
    ]
    assert [value_at(after, p) for p in paths] == ["y", 5, "5"]


def test_changed_paths_added_removed_and_unnamed_lists() -> None:
    assert changed_paths({"a": 1}, {"a": 1, "b": 2}) == ["b"]
    assert changed_paths({"a": 1, "b": 2}, {"a": 1}) == ["b"]
    assert changed_paths({"l": [1, 2]}, {"l": [1, 3]}) == ["l[1]"]
    assert changed_paths({"l": [1, 2]}, {"l": [1, 2, 3]}) == ["l"]
    assert changed_paths({"l": [{"name": "a"}]}, {"l": [{"name": "a"}, {"name": "b", "v": 1}]}) == ["l[b]"]


def test_project_keeps_only_what_the_spec_sets() -> None:
    live = {
        "spec": {
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "ckpt"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "volumeMode": "Filesystem",
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                    "status": {"phase": "Pending"},
                }
            ]
        }
    }
    desired = {
        "spec": {
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "ckpt"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
                }
            ]
        }
    }
    assert changed_paths(project(live, desired), desired) == [
        "spec.volumeClaimTemplates[ckpt].spec.resources.requests.storage"
    ]


# ---- claim names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "templates", "expected"),
    [
        ("model-storage-ml-training-2", ["model-storage", "dataset-storage"], ClaimRef("model-storage", 2)),
        ("data-a-b-c-10", ["data", "data-a"], ClaimRef("data-a", 10)),  # longest template wins: sts "b-c"
        ("model-storage-ml-training-02", ["model-storage"], None),  # the controller never pads ordinals
        ("model-storage-other-0", ["model-storage"], None),
        ("dataset", ["model-storage"], None),
        ("scratch-ml-training-7", [], ClaimRef("scratch", 7)),  # StatefulSet gone: pattern only
        ("ml-training-7", [], None),
    ],
)
def test_parse_claim_name(name: str, templates: list[str], expected: ClaimRef | None) -> None:
    sts = "b-c" if name.startswith("data-a") else "ml-training"
    assert parse_claim_name(name, sts, templates) == expected


# ---- gc verdicts and readiness -------------------------------------------------------------------


def _claim(name: str, ordinal: int, **kw: Any) -> ClaimRow:
    row = ClaimRow(
        name=name,
        template="ckpt",
        ordinal=ordinal,
        phase="Bound",
        storage_class="standard",
        requested="1Gi",
        capacity="1Gi",
        volume="pv",
        age_s=10.0,
        protected=False,
        labels={"app.kubernetes.io/instance": "t"},
    )
    for key, value in kw.items():
        setattr(row, key, value)
    return row


def _state(replicas: int, claims: list[ClaimRow], pods: list[PodRow] | None = None, **kw: Any) -> ClusterState:
    sts = {
        "spec": {
            "volumeClaimTemplates": [{"metadata": {"name": "ckpt", "labels": {"app.kubernetes.io/instance": "t"}}}]
        }
    }
    state = ClusterState(
        name="t",
        namespace="ns",
        exists=True,
        replicas=replicas,
        ready_replicas=replicas,
        updated_replicas=replicas,
        current_revision="r1",
        update_revision="r1",
        generation_observed=True,
        retention={},
        templates=["ckpt"],
        pods=pods or [],
        claims=claims,
        shared=[],
        statefulset=sts,
    )
    for key, value in kw.items():
        setattr(state, key, value)
    return state


def test_gc_keeps_everything_but_unmounted_unprotected_orphans() -> None:
    claims = [
        _claim("ckpt-t-0", 0),
        _claim("ckpt-t-3", 3, orphaned=True),
        _claim("ckpt-t-4", 4, orphaned=True, mounted_by=["debug-pod"]),
        _claim("ckpt-t-5", 5, orphaned=True, protected=True),
        _claim("ckpt-t-6", 6, orphaned=True, labels={"app.kubernetes.io/instance": "someone-else"}),
        _claim("ckpt-t-7", 7, orphaned=True, deleting=True),
    ]
    state = _state(2, claims)
    verdicts = {c.name: judge(state, c) for c in claims}
    assert [n for n, v in verdicts.items() if v.delete] == ["ckpt-t-3"]
    assert "replica 0" in verdicts["ckpt-t-0"].reason
    assert "debug-pod" in verdicts["ckpt-t-4"].reason
    assert "protect" in verdicts["ckpt-t-5"].reason
    assert "labels" in verdicts["ckpt-t-6"].reason


@pytest.mark.parametrize(
    ("kind", "protected", "volumes_kept", "expected"),
    [
        ("Namespace", False, None, "other workloads may live in it"),  # shared: even when volumes may go
        ("StorageClass", False, None, "cluster-wide"),
        ("ConfigMap", False, "kept", None),
        ("ConfigMap", True, "kept", 'protected (berth.dev/protect: "true")'),
        (
            "PersistentVolumeClaim",
            False,
            "volume: kept unless --delete-volumes",
            "volume: kept unless --delete-volumes",
        ),
        ("PersistentVolume", False, "never pruned", "never pruned"),
        ("PersistentVolumeClaim", False, None, None),  # down --delete-volumes, gc
        ("PersistentVolumeClaim", True, None, 'protected (berth.dev/protect: "true")'),  # beats --delete-volumes
        ("PersistentVolumeClaim", True, "volume: kept", 'protected (berth.dev/protect: "true")'),  # the stronger reason
    ],
)
def test_deletion_policy_holds(kind: str, protected: bool, volumes_kept: str | None, expected: str | None) -> None:
    from berth.kube.deletion import keep_reason

    why = keep_reason(kind, protected=protected, volumes_kept=volumes_kept)
    assert why == expected if expected is None else expected in str(why)


def test_deletion_policy_reads_the_protect_annotation_of_listed_objects() -> None:
    from berth.kube.deletion import removal

    def obj(kind: str, protect: str | None) -> dict[str, Any]:
        annotations = {} if protect is None else {"berth.dev/protect": protect}
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "annotations": annotations},
        }

    gone = removal(obj("ConfigMap", None), volumes_kept="kept", because="no longer in the spec")
    assert (gone.delete, gone.reason, gone.namespace) == (True, "no longer in the spec", "ns")
    assert removal(obj("ConfigMap", "false"), volumes_kept="kept", because="b").delete
    kept = removal(obj("ConfigMap", "true"), volumes_kept=None, because="b")
    assert (kept.delete, kept.reason) == (False, 'protected (berth.dev/protect: "true")')
    assert removal(obj("PersistentVolumeClaim", None), volumes_kept="data", because="b").reason == "data"


def _pod(ordinal: int, ready: bool = True, revision: str = "r1", reason: str | None = None) -> PodRow:
    return PodRow(
        name=f"t-{ordinal}",
        ordinal=ordinal,
        phase="Running" if ready else "Pending",
        ready=ready,
        node="n",
        zone="z",
        restarts=0,
        revision=revision,
        reason=reason,
    )


def test_readiness_names_every_blocker() -> None:
    claims = [_claim(f"ckpt-t-{i}", i) for i in range(3)]
    assert readiness(_state(3, claims, [_pod(0), _pod(1), _pod(2)])).done
    claims[2].phase = "Pending"
    pods = [_pod(0), _pod(1, revision="r0"), _pod(2, ready=False, reason="PodScheduled: 0/3 nodes are available")]
    result = readiness(_state(3, claims, pods, update_revision="r1"))
    assert not result.done
    assert result.summary == "t: 1/3 pods ready, 2/3 claims Bound"
    assert any("0/3 nodes are available" in b for b in result.blockers)
    assert any("old revision" in b for b in result.blockers)
    assert "claim ckpt-t-2: Pending" in result.blockers
    missing = readiness(_state(3, claims[:2], [_pod(0)]))
    assert "t-1: not created yet" in missing.blockers


def test_readiness_waits_for_deleted_claims_and_terminating_pods() -> None:
    claims = [_claim("ckpt-t-0", 0), _claim("ckpt-t-1", 1, orphaned=True)]
    state = _state(1, claims, [_pod(0), _pod(1)])
    result = readiness(state, claims_gone_below=2)
    assert "t-1: still running after scale-down" in result.blockers
    assert any("ckpt-t-1" in b for b in result.blockers)
    assert readiness(_state(1, claims, [_pod(0)])).done  # Retain: the orphan may stay


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", "insufficient-gpu"),
        ("0/3 nodes are available: 3 node(s) had volume node affinity conflict.", "zone-mismatch"),
        ("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.", "unbound-claim"),
        ("0/3 nodes are available: 3 node(s) had untolerated taint {gpu: true}.", "untolerated-taint"),
        ("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", "node-selector"),
        ("0/3 nodes are available: 3 Insufficient memory.", "insufficient-resources"),
        ("", "pod-pending"),
    ],
)
def test_doctor_names_why_a_pod_is_not_scheduled(message: str, code: str) -> None:
    from berth.kube.doctor import Facts, diagnose

    pod = PodRow(
        name="t-0",
        ordinal=0,
        phase="Pending",
        ready=False,
        node=None,
        zone=None,
        restarts=0,
        revision="r1",
        reason=f"PodScheduled: {message}" if message else None,
    )
    nodes = [
        {
            "metadata": {"name": "n", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
            "status": {"allocatable": {"nvidia.com/gpu": "8"}},
        }
    ]
    findings = diagnose(Facts(_state(1, [], [pod]), [], {}, {}, nodes, []))
    assert [(f.code, f.object) for f in findings] == [(code, "pod/t-0")]
    if code == "insufficient-gpu":
        assert "cluster allocatable: 8 GPUs" in findings[0].evidence


@pytest.mark.parametrize(
    ("took", "expected"),
    [
        (20.0, None),  # a third of the grace period: fine
        (40.4, ("warning", "used most of the grace period", "at least 86")),
        (55.1, ("error", "cut short", "at least 116")),  # the supervisor's SIGKILL, 5 s before the kubelet's
        ("55", None),  # not a number the supervisor writes: ignored, not guessed
    ],
)
def test_doctor_compares_the_measured_stop_with_the_grace_period(took: Any, expected: tuple[str, ...] | None) -> None:
    from berth.kube.doctor import Facts, diagnose
    from berth.kube.status import RankRun

    run = RankRun.parse({"phase": "Running", "restarts": 1, "lastStopSeconds": took})
    pod = _pod(0)
    pod.run, pod.grace_seconds = run, 60
    findings = [f for f in diagnose(Facts(_state(1, [], [pod]), [], {}, {}, [], [])) if f.code == "grace-period-tight"]
    if expected is None:
        assert findings == []
        return
    severity, problem, fix = expected
    [finding] = findings
    assert (finding.severity, finding.object) == (severity, "pod/t-0")
    assert problem in finding.problem and fix in finding.fix, finding
    said = f"the trainer took {took:.0f}s to stop after SIGTERM; terminationGracePeriodSeconds is 60"
    assert finding.evidence == said
    assert run is not None and run.to_json()["lastStopSeconds"] == took


# ---- errors, retries, connection ----------------------------------------------------------------


def _api_error(code: int, body: dict[str, Any]) -> ApiError:
    request = httpx2.Request("PATCH", "https://127.0.0.1:1/apis/apps/v1/namespaces/ns/statefulsets/t")
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, **body}
    response = httpx2.Response(code, json=status, request=request)
    return ApiError(request=request, response=response)


@dataclass(frozen=True)
class _Where:
    """What translate needs of a cluster (a Kube is one): errors.py does not know the client."""

    server: str = "https://127.0.0.1:1"
    context: str = "ctx"
    namespace: str = "ns"


def test_translate_maps_statuses_to_clear_errors() -> None:
    kube = _Where()
    forbidden = translate(
        _api_error(
            403, {"reason": "Forbidden", "message": 'statefulsets.apps "t" is forbidden: User "x" cannot patch'}
        ),
        "apply",
        kube,
    )
    assert isinstance(forbidden, Forbidden) and "cannot patch" in forbidden.message and "rbac" in str(forbidden.hint)
    missing = translate(
        _api_error(
            404,
            {
                "reason": "NotFound",
                "message": 'namespaces "gone" not found',
                "details": {"name": "gone", "kind": "namespaces"},
            },
        ),
        "apply",
        kube,
    )
    assert isinstance(missing, NamespaceMissing) and "gone" in missing.message
    conflict = translate(
        _api_error(
            409,
            {
                "reason": "Conflict",
                "message": "Apply failed with 1 conflict",
                "details": {
                    "causes": [
                        {
                            "reason": "FieldManagerConflict",
                            "message": 'conflict with "kubectl-edit" using apps/v1',
                            "field": ".spec.replicas",
                        }
                    ]
                },
            },
        ),
        "apply StatefulSet ns/t",
        kube,
    )
    assert isinstance(conflict, ApplyConflict)
    assert ".spec.replicas (owned by kubectl-edit)" in conflict.message and "--force-conflicts" in str(conflict.hint)
    invalid = translate(
        _api_error(
            422,
            {
                "reason": "Invalid",
                "message": 'StatefulSet.apps "t" is invalid: spec: '
                "Forbidden: updates to statefulset spec for fields other than 'replicas'",
                "details": {"causes": [{"field": "spec"}]},
            },
        ),
        "apply",
        kube,
    )
    assert isinstance(invalid, Invalid) and invalid.fields == ["spec"] and "volumeClaimTemplates" in str(invalid.hint)
    with pytest.raises(ZeroDivisionError):  # bugs are not dressed up as user errors
        translate(ZeroDivisionError(), "x", kube)


def _kubeconfig(tmp_path: Path, server: str, contexts: tuple[str, ...] = ("a",)) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": contexts[0],
                "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": c, "context": {"cluster": "c", "user": "u", "namespace": f"ns-{c}"}} for c in contexts
                ],
            }
        )
    )
    return path


def test_connect_resolves_context_and_namespace_like_kubectl(tmp_path: Path) -> None:
    cfg = _kubeconfig(tmp_path, "https://127.0.0.1:1", ("a", "b"))
    assert connect(Target(str(cfg))).namespace == "ns-a"
    assert connect(Target(str(cfg), "b")).context == "b"
    assert connect(Target(str(cfg), "b", "explicit")).namespace == "explicit"
    with pytest.raises(BerthError, match="context nope not found") as err:
        connect(Target(str(cfg), "nope"))
    assert "a, b" in str(err.value.hint)
    with pytest.raises(BerthError, match="no kubeconfig"):
        connect(Target(str(tmp_path / "missing")))


def test_bad_kubeconfig_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBECONFIG naming a missing file is reported as that file; YAML and encoding errors fit one line."""
    missing = tmp_path / "missing"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    with pytest.raises(BerthError) as missing_err:
        connect(Target())
    assert missing_err.value.message == f"no kubeconfig at {missing}"
    broken = tmp_path / "broken"
    broken.write_text("clusters: [\n")
    with pytest.raises(BerthError, match=r"cannot read kubeconfig .*: line 2, column 1: ") as err:
        connect(Target(str(broken)))
    assert "\n" not in err.value.message
    broken.write_bytes(b"clusters: \xd0\xff\n")
    with pytest.raises(BerthError, match=r"cannot read kubeconfig .*utf-8"):
        connect(Target(str(broken)))
    no_current = tmp_path / "no-current"
    no_current.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": []}))
    with pytest.raises(BerthError, match="no current-context set in"):
        connect(Target(str(no_current)))


def test_unreachable_cluster_is_retried_within_budget_then_reported(tmp_path: Path) -> None:
    from lightkube.resources.core_v1 import Namespace

    port = free_ports(1)[0]  # nothing listens: every connect is refused
    kube = connect(
        Target(str(_kubeconfig(tmp_path, f"https://127.0.0.1:{port}"))),
        retry=RetryPolicy(budget_s=1.0, first_delay_s=0.1, max_delay_s=0.4),
    )
    start = time.monotonic()
    with pytest.raises(ClusterUnreachable) as err:
        kube.call("list namespaces", lambda: list(kube.client.list(Namespace)))
    elapsed = time.monotonic() - start
    assert f"127.0.0.1:{port}" in err.value.message and "after retrying" in err.value.message
    assert kube.retries >= 3 and kube.requests == kube.retries + 1
    assert 0.6 <= elapsed < 5


Answer = Callable[[str], tuple[int, dict[str, Any]]]


@contextmanager
def _api_server(answer: Answer) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering each GET with ``answer(path)``; yields its URL."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, doc = answer(self.path)
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _status(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": message}


def test_retry_recovers_when_the_server_comes_back(tmp_path: Path) -> None:
    """A real HTTP server that answers 503 twice, then 200: the call succeeds, 3 requests made."""
    from lightkube.resources.core_v1 import Namespace

    answers = [
        _status(503, "starting"),
        _status(503, "starting"),
        (200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": []}),
    ]
    with _api_server(lambda _path: answers.pop(0)) as url:
        kube = connect(Target(str(_kubeconfig(tmp_path, url))), retry=RetryPolicy(budget_s=5, first_delay_s=0.05))
        assert kube.call("list namespaces", lambda: list(kube.client.list(Namespace))) == []
        assert (kube.requests, kube.retries) == (3, 2)


def test_get_or_none_is_none_for_404_only(tmp_path: Path) -> None:
    """404 is an answer (None); 403 is still an error; every GET is counted."""
    from lightkube.resources.core_v1 import Namespace

    def answer(path: str) -> tuple[int, dict[str, Any]]:
        name = path.rsplit("/", 1)[1]
        if name == "present":
            return 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "present"}}
        return _status(403, "forbidden") if name == "secret" else _status(404, f'namespaces "{name}" not found')

    with _api_server(answer) as url:
        kube = connect(Target(str(_kubeconfig(tmp_path, url))), retry=RetryPolicy(budget_s=0))
        found = kube.get_or_none(Namespace, "present")
        assert found is not None and found.metadata is not None and found.metadata.name == "present"
        assert kube.get_or_none(Namespace, "absent") is None
        with pytest.raises(Forbidden):
            kube.get_or_none(Namespace, "secret")
        assert kube.requests == 3
        kube.close()


def test_discovery_goes_through_the_counted_client(tmp_path: Path) -> None:
    """API discovery (a path lightkube has no model for) uses ``Kube.http``: same server, same count."""
    from berth.kube.client import discover

    def answer(path: str) -> tuple[int, dict[str, Any]]:
        if path == "/apis/monitoring.coreos.com/v1":
            return 200, {
                "kind": "APIResourceList",
                "resources": [
                    {"name": "servicemonitors", "kind": "ServiceMonitor", "namespaced": True},
                    {"name": "servicemonitors/status", "kind": "ServiceMonitor", "namespaced": True},
                ],
            }
        return _status(404, "not found")

    with _api_server(answer) as url:
        kube = connect(Target(str(_kubeconfig(tmp_path, url))), retry=RetryPolicy(budget_s=0))
        model = discover(kube, "monitoring.coreos.com/v1", "ServiceMonitor")
        assert model is not None and model._api_info.plural == "servicemonitors"
        assert discover(kube, "velero.io/v1", "Schedule") is None
        assert kube.requests == 2
        kube.close()


def test_retry_policy_is_bounded() -> None:
    delays = list(RetryPolicy(budget_s=10, first_delay_s=0.5, max_delay_s=2).delays())
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert sum(delays) <= 10


def test_timeout_flag_parsing() -> None:
    from berth.cli.options import timeout_seconds

    assert timeout_seconds("300") == 300
    assert timeout_seconds("5m") == 300
    assert timeout_seconds("1h30m") == 5400
    with pytest.raises(UsageError):
        timeout_seconds("5 minutes")


def test_scale_below_one_is_refused_before_any_api_call(tmp_path: Path) -> None:
    """A usage error (exit 2) without contacting the cluster: nothing listens on this kubeconfig's port."""
    from ..conftest import berth_process

    cfg = _kubeconfig(tmp_path, f"https://127.0.0.1:{free_ports(1)[0]}")
    out = berth_process("scale", "trainer", "0", "--kubeconfig", str(cfg), timeout=60, env={"BERTH_API_RETRY_S": "0"})
    assert out.returncode == 2
    assert "replicas" in out.stderr and "no cluster reachable" not in out.stderr


def test_plan_lints_the_rendered_stack() -> None:
    """The linter's public API is wired in: the seed's unpinned image is flagged on the StatefulSet."""
    import yaml

    from berth.kube.apply import desired_objects
    from berth.kube.plan import lint_findings
    from berth.spec.load import parse_spec

    from .cluster_helpers import seed_like

    findings = lint_findings(desired_objects(parse_spec(yaml.safe_dump(seed_like("ns1")))))
    assert any(f["rule"] == "image-latest-tag" and f["kind"] == "StatefulSet" for f in findings)
    assert all(f["severity"] != "error" for f in findings)


def test_live_view_shows_each_pod_its_claims_and_why_it_waits() -> None:
    from rich.console import Console

    from berth.cli.views import rollout_table

    claims = [_claim(f"ckpt-t-{i}", i) for i in range(3)]
    claims[2].phase = "Pending"
    pods = [_pod(0), _pod(1), _pod(2, ready=False, reason="PodScheduled: 0/3 nodes are available")]
    state = _state(3, claims, pods, ready_replicas=2)
    console = Console(record=True, width=160)
    console.print(rollout_table(state, readiness(state), 12.0))
    text = console.export_text()
    assert "t: 2/3 pods ready, 2/3 claims Bound · waiting: 2/3 ready · 12s" in text
    line = next(row for row in text.splitlines() if row.startswith("t-2"))
    assert "ckpt:Pending" in line and "0/3 nodes are available" in line
    many = _state(30, [], [_pod(i) for i in range(30)])
    console = Console(record=True, width=160)
    console.print(rollout_table(many, readiness(many), 1.0))
    assert "… 10 more pods" in console.export_text()


def test_kubeconfig_env_list_uses_its_first_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _kubeconfig(tmp_path, "https://127.0.0.1:1", ("from-env",))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{cfg}")
    assert connect(Target()).context == "from-env"
    monkeypatch.setenv("BERTH_API_RETRY_S", "soon")
    with pytest.raises(BerthError, match="BERTH_API_RETRY_S"):
        connect(Target())


# ---- layering -----------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any level (TYPE_CHECKING and function-level included)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


KUBE = Path(__file__).resolve().parents[2] / "src" / "berth" / "kube"


def test_kube_errors_is_a_leaf() -> None:
    """errors.py imports nothing from berth.kube: the client imports it, never the other way round."""
    assert not {m for m in _imports(KUBE / "errors.py") if m.startswith("berth.kube")}


def test_kube_never_imports_the_sandbox() -> None:
    offenders = {f.name: m for f in KUBE.glob("*.py") for m in _imports(f) if m.startswith("berth.sandbox")}
    assert not offenders
