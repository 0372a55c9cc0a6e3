"""spec.lifecycle: defaults, what it renders, and one located error (exit 2) per bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from berth.render import render_all
from berth.spec.model import TrainingCluster

from ..conftest import RunBerth

BASE = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: demo}
spec:
  replicas: 2
  image: example.com/trainer:1.0
  command: [python, train.py]
"""


def _spec(lifecycle: object) -> TrainingCluster:
    doc = yaml.safe_load(BASE)
    doc["spec"]["lifecycle"] = lifecycle
    return TrainingCluster.model_validate(doc)


def test_defaults_and_absence() -> None:
    lc = _spec({}).spec.lifecycle
    assert lc is not None
    assert (lc.on_complete, lc.max_restarts, lc.backoff_seconds, lc.stop_grace_seconds) == ("scaleToZero", 3, 10, 30)
    assert TrainingCluster.model_validate(yaml.safe_load(BASE)).spec.lifecycle is None


def test_lifecycle_renders_the_supervisor_an_emptydir_state_and_a_narrow_role() -> None:
    objects = render_all(_spec({"onComplete": "idle", "maxRestarts": 0}))
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    trainer = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in trainer["env"]}
    assert env["BERTH_LIFECYCLE"] == "idle" and env["BERTH_MAX_RESTARTS"] == "0"
    assert env["BERTH_STATE_DIR"] == "/berth-state"  # no volume: an emptyDir keeps it across container restarts
    assert {"name": "berth-state", "emptyDir": {}} in pod["volumes"]
    assert 'exec berth run -- "$@"' in trainer["command"][2] and trainer["command"][-2:] == ["python", "train.py"]
    assert pod["automountServiceAccountToken"] is True
    role = next(o for o in objects if o["kind"] == "Role")
    assert [(r["resources"], r["resourceNames"], r["verbs"]) for r in role["rules"]] == [
        (["pods"], ["demo-0", "demo-1"], ["patch"]),
        (["statefulsets"], ["demo"], ["patch"]),
        (["statefulsets/scale"], ["demo"], ["patch"]),
    ]
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo", "namespace": "default"}]


@pytest.mark.parametrize(
    ("lifecycle", "where", "message"),
    [
        ("{maxRestarts: -1}", "8:28", "spec.lifecycle.maxRestarts: Input should be greater than or equal to 0"),
        ("{onComplete: delete}", "8:27", "spec.lifecycle.onComplete: Input should be 'scaleToZero' or 'idle'"),
        ("{onCompletion: idle}", "8:15", "spec.lifecycle.onCompletion: unknown field 'onCompletion'"),
        (
            "{stopGraceSeconds: 0}",
            "8:33",
            "spec.lifecycle.stopGraceSeconds: Input should be greater than or equal to 1",
        ),
        ("yes", "8:14", "spec.lifecycle:"),
    ],
)
def test_bad_lifecycle_is_one_located_error(
    lifecycle: str, where: str, message: str, tmp_path: Path, berth: RunBerth
) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text(BASE + f"  lifecycle: {lifecycle}\n")
    result = berth("render", str(path))
    assert result.code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"{path}:{where}: {message}"), errors[0]
