"""Bad pod features through the real CLI: exit 2, one located line ``file:line:col: path: message``, a hint.

Same shape as test_spec_bad_specs.py: a small spec, the field path to blame, a fragment of the
message, and the token (unique in the file) the error must point at, found by text search so
the expected line:col does not come from the loader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import RunBerth, berth_process
from .spec_helpers import HEADER

# A deprecation inside the loader is a bug that breaks on the next pydantic major: fail on it.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

BASE = "  replicas: 2\n  image: busybox\n"
MEM = "  resources: {limits: {memory: 8Gi}}\n"
OVERLAY_TRAINER = "  podTemplate:\n    spec:\n      containers:\n        - name: trainer\n"


@dataclass(frozen=True)
class Bad:
    id: str
    body: str
    path: str
    message: str
    at: str
    hint: str | None

    def text(self) -> str:
        return HEADER + BASE + self.body

    def position(self) -> tuple[int, int]:
        hits = [
            (n, m.start() + 1)
            for n, line in enumerate(self.text().splitlines(), 1)
            for m in re.finditer(re.escape(self.at), line)
        ]
        assert len(hits) == 1, f"token {self.at!r} must occur once, found {hits}"
        return hits[0]


CASES = [
    # The five of issue 11.
    Bad(
        "overlay-removes-trainer",
        "  podTemplate:\n    spec:\n      containers:\n        - {name: trainer, $patch: delete}\n",
        "spec.podTemplate.spec.containers[0]",
        "the overlay removes the trainer container",
        "{name: trainer",
        "patch the trainer by name",
    ),
    Bad(
        "probe-port-missing",
        "  probes:\n    readiness: {httpGet: {path: /healthz, port: 8080}}\n",
        "spec.probes.readiness.httpGet.port",
        "the trainer has no port 8080",
        "8080",
        "training (2222), metrics (9400)",
    ),
    Bad(
        "toleration-bad-operator",
        "  scheduling:\n    tolerations: [{key: gpu, operator: Exist}]\n",
        "spec.scheduling.tolerations[0].operator",
        "'Exists' or 'Equal'",
        "Exist}",
        None,
    ),
    Bad(
        "sidecar-named-trainer",
        "  sidecars:\n    - name: trainer\n      image: fluent/fluent-bit:3.1\n",
        "spec.sidecars[0].name",
        "'trainer' is the training container's name",
        "trainer",
        "its own name",
    ),
    Bad(
        "shm-over-memory-limit",
        MEM + "  shm: 16Gi\n",
        "spec.shm",
        "shm 16Gi is larger than the memory limit 8Gi",
        "16Gi",
        "use at most 8Gi",
    ),
    # More of the same kind.
    Bad(
        "overlay-replaces-containers",
        "  podTemplate:\n    spec:\n      containers:\n        - {$patch: replace}\n        - {name: other}\n",
        "spec.podTemplate.spec.containers[0]",
        "removes the trainer container",
        "{$patch: replace}",
        "patch the trainer by name",
    ),
    Bad(
        "overlay-schema-after-merge",
        OVERLAY_TRAINER + "          ports: [{containerPort: http}]\n",
        "spec.podTemplate.spec.containers[0].ports[0].containerPort",
        "expected integer",
        "http",
        "valid PodTemplateSpec",
    ),
    Bad(
        "overlay-mount-needs-name",
        OVERLAY_TRAINER + "          volumeMounts: [{mountPath: /x}]\n",
        "spec.podTemplate.spec.containers[0].volumeMounts[0]",
        "required field 'name' is missing",
        "{mountPath: /x}",
        "valid PodTemplateSpec",
    ),
    Bad(
        "overlay-unknown-field",
        "  podTemplate:\n    spec:\n      hostNetwrok: true\n",
        "spec.podTemplate.spec.hostNetwrok",
        "unknown field 'hostNetwrok'",
        "hostNetwrok",
        "valid PodTemplateSpec",
    ),
    Bad(
        "overlay-entry-without-name",
        "  podTemplate:\n    spec:\n      volumes: [{emptyDir: {}}]\n",
        "spec.podTemplate.spec.volumes[0]",
        "needs its name",
        "{emptyDir",
        "add name",
    ),
    Bad(
        "overlay-sets-rank",
        "  podTemplate:\n    spec:\n      containers: [{name: trainer, env: [{name: RANK, value: '0'}]}]\n",
        "spec.podTemplate.spec.containers[0].env[0].name",
        "RANK is computed by berth",
        "RANK",
        "remove the entry",
    ),
    Bad(
        "probe-unknown-field",
        "  probes:\n    liveness: {tcpSocket: {port: training}, periodSecond: 5}\n",
        "spec.probes.liveness.periodSecond",
        "unknown field 'periodSecond' in a Probe",
        "periodSecond:",
        "Kubernetes API reference for Probe",
    ),
    Bad(
        "probe-named-port-missing",
        "  probes:\n    startup: {tcpSocket: {port: http}}\n",
        "spec.probes.startup.tcpSocket.port",
        "the trainer has no port 'http'",
        "http",
        "probe one of its ports",
    ),
    Bad(
        "liveness-success-threshold",
        "  probes:\n    liveness: {tcpSocket: {port: training}, successThreshold: 3}\n",
        "spec.probes.liveness.successThreshold",
        "must be 1",
        "3}",
        "defaults to 1",
    ),
    Bad(
        "secret-ref-without-key",
        "  env:\n    HF_TOKEN: {valueFrom: {secretKeyRef: {name: hf}}}\n",
        "spec.env.HF_TOKEN.valueFrom.secretKeyRef",
        "required field 'key' is missing",
        "{name: hf}",
        "EnvVarSource",
    ),
    Bad(
        "affinity-typo",
        "  scheduling:\n    affinity: {nodeAfinity: {}}\n",
        "spec.scheduling.affinity.nodeAfinity",
        "unknown field 'nodeAfinity'",
        "nodeAfinity",
        "Affinity",
    ),
    Bad(
        "sidecar-duplicate-name",
        "  initContainers: [{name: prep}]\n  sidecars: [{name: prep, image: x}]\n",
        "spec.sidecars[0].name",
        "already used by initContainers[0]",
        "prep, image",
        "unique",
    ),
    Bad(
        "sidecar-restart-never",
        "  sidecars: [{name: logs, restartPolicy: Never}]\n",
        "spec.sidecars[0].restartPolicy",
        "restartPolicy Always",
        "Never",
        "berth sets Always",
    ),
    Bad(
        "init-container-mounts-unknown-volume",
        "  initContainers: [{name: prep, volumeMounts: [{name: scratch, mountPath: /d}]}]\n",
        "spec.initContainers[0].volumeMounts[0].name",
        "the pod has no volume 'scratch'",
        "scratch",
        "mount one of",
    ),
    Bad(
        "sidecar-mounts-volume-the-overlay-deletes",
        "  shm: 1Gi\n  sidecars: [{name: logs, volumeMounts: [{name: shm, mountPath: /s}]}]\n"
        "  podTemplate: {spec: {volumes: [{name: shm, $patch: delete}]}}\n",
        "spec.sidecars[0].volumeMounts[0].name",
        "the pod has no volume 'shm'",
        "shm, mountPath",
        "mount one of: none",
    ),
    Bad(
        "pod-volume-two-sources",
        "  podVolumes:\n    cfg: {mountPath: /cfg, secret: {secretName: s}, configMap: {name: c}}\n",
        "spec.podVolumes.cfg",
        "exactly one of secret, configMap, projected, csi",
        "{mountPath: /cfg",
        "one source",
    ),
    Bad(
        "csi-volume-without-driver",
        "  podVolumes:\n    v: {mountPath: /v, csi: {readOnly: true}}\n",
        "spec.podVolumes.v.csi",
        "required field 'driver' is missing",
        "{readOnly",
        "CSIVolumeSource",
    ),
    Bad(
        "pod-volume-at-shm",
        "  shm: 1Gi\n  podVolumes:\n    v: {mountPath: /dev/shm, secret: {secretName: s}}\n",
        "spec.podVolumes.v.mountPath",
        "/dev/shm is where spec.shm is mounted",
        "/dev/shm",
        "another mount path",
    ),
    Bad(
        "volcano-with-other-scheduler",
        "  scheduling: {schedulerName: default-scheduler, queue: {volcano: q}}\n",
        "spec.scheduling.schedulerName",
        "needs schedulerName volcano",
        "default-scheduler",
        "berth sets volcano",
    ),
    Bad(
        "queue-both",
        "  scheduling:\n    queue: {kueue: a, volcano: b}\n",
        "spec.scheduling.queue",
        "exactly one of kueue, volcano",
        "{kueue",
        "queue: {kueue: team-a}",
    ),
    Bad(
        "sidecar-memory-gb",
        "  sidecars: [{name: logs, resources: {limits: {memory: 1gb}}}]\n",
        "spec.sidecars[0].resources.limits.memory",
        "not a Kubernetes quantity",
        "1gb",
        "8Gi",
    ),
    Bad(
        "overlay-cpu-not-a-quantity",
        OVERLAY_TRAINER + "          resources: {limits: {cpu: lots}}\n",
        "spec.podTemplate.spec.containers[0].resources.limits.cpu",
        "not a Kubernetes quantity",
        "lots",
        "500m",
    ),
    Bad(
        "overlay-restart-never",
        "  podTemplate: {spec: {restartPolicy: Never}}\n",
        "spec.podTemplate.spec.restartPolicy",
        "restart Always, not Never",
        "Never",
        "spec.initContainers",
    ),
    Bad(
        "toleration-seconds-without-noexecute",
        "  scheduling:\n    tolerations: [{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]\n",
        "spec.scheduling.tolerations[0].tolerationSeconds",
        "only to effect NoExecute",
        "5}",
        "NoExecute",
    ),
]


def _located(stderr: str, filename: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{filename}:")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_pod_feature_gives_one_located_line(case: Bad, berth: RunBerth, write_spec: Callable[[str], Path]) -> None:
    path = write_spec(case.text())
    result = berth("render", str(path))
    assert result.code == 2, result.stdout + result.stderr
    assert result.stdout == ""
    located = _located(result.stderr, str(path))
    assert len(located) == 1, result.stderr
    line, col = case.position()
    assert located[0].startswith(f"{path}:{line}:{col}: {case.path}: "), (
        f"expected {path}:{line}:{col}: {case.path}: …\ngot {located[0]}"
    )
    assert case.message in located[0], located[0]
    hints = [ln for ln in result.stderr.splitlines() if ln.startswith("  hint: ")]
    if case.hint is None:
        assert hints == [], result.stderr
    else:
        assert len(hints) == 1 and case.hint in hints[0], result.stderr


def test_a_real_process_exits_2_on_the_issue_cases(write_spec: Callable[[str], Path]) -> None:
    """One child process per bad input of issue 11 (the in-process runner is checked against it)."""
    for case in CASES[:5]:
        done = berth_process("render", str(write_spec(case.text())))
        assert done.returncode == 2, (case.id, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", CASES[:5], ids=[c.id for c in CASES[:5]])
def test_plan_and_lint_locate_the_issue_cases_as_render_does(
    case: Bad, berth: RunBerth, write_spec: Callable[[str], Path]
) -> None:
    """`berth plan` (before it asks the cluster anything) and `berth lint` blame the same line:col and field."""
    path = write_spec(case.text())
    line, col = case.position()
    plan = berth("plan", str(path))
    assert plan.code == 2, plan.stdout + plan.stderr
    located = _located(plan.stderr, str(path))
    assert len(located) == 1 and located[0].startswith(f"{path}:{line}:{col}: {case.path}: "), plan.stderr
    assert case.message in located[0]
    lint = berth("lint", str(path))
    assert lint.code == 2, lint.stdout + lint.stderr
    errors = [ln.strip() for ln in lint.stdout.splitlines() if " error " in ln]
    assert len(errors) == 1, lint.stdout
    assert re.match(rf"{line}:{col}\s+error\s+spec-invalid\s+{re.escape(case.path)}: ", errors[0]), errors[0]
    assert case.message in errors[0]
