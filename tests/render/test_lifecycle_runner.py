"""spec.lifecycle.runner: inject — berth's zipapp in a ConfigMap, mounted into images without berth."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import yaml

from berth import pyz
from berth.render import render_all
from berth.render.explain import explain_objects
from berth.spec.model import TrainingCluster

from ..conftest import RunBerth
from ..spec.test_lifecycle_spec import BASE


def _spec(lifecycle: dict[str, Any]) -> TrainingCluster:
    doc = yaml.safe_load(BASE)
    doc["spec"]["lifecycle"] = lifecycle
    return TrainingCluster.model_validate(doc)


def _objects(lifecycle: dict[str, Any]) -> list[dict[str, Any]]:
    return render_all(_spec(lifecycle))


def _explained(lifecycle: dict[str, Any]) -> dict[tuple[str, str], str]:
    spec = _spec(lifecycle)
    return {(kind, name): why for kind, name, why in explain_objects(spec, render_all(spec))}


def test_inject_renders_the_zipapp_configmap_mounted_read_only_and_run_by_python3() -> None:
    objects = _objects({"runner": "inject"})
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert names.index(("ConfigMap", "demo-runner")) < names.index(("StatefulSet", "demo"))  # before its pods
    cm = objects[names.index(("ConfigMap", "demo-runner"))]
    assert cm["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
    data = base64.b64decode(cm["binaryData"]["berth.pyz"])
    assert data == pyz.build()
    files = zipfile.ZipFile(io.BytesIO(data[data.index(b"PK") :])).namelist()
    assert "__main__.py" in files and "berth/runtime/supervisor.py" in files and "berth/spec/model.py" not in files
    pod = next(o for o in objects if o["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    trainer = pod["containers"][0]
    assert {"name": "berth-runner", "configMap": {"name": "demo-runner", "defaultMode": 0o444}} in pod["volumes"]
    assert {"name": "berth-runner", "mountPath": "/berth-runner", "readOnly": True} in trainer["volumeMounts"]
    env = {e["name"]: e.get("value") for e in trainer["env"]}
    assert env["BERTH_RUNNER"] == "/berth-runner/berth.pyz"
    script = trainer["command"][2]
    assert 'exec python3 "$BERTH_RUNNER" run -- "$@"' in script and "exec berth run" not in script
    assert "no python3 in this image" in script and trainer["command"][-2:] == ["python", "train.py"]
    assert objects == _objects({"runner": "inject"})  # same bytes each render: berth diff sees no change
    why = _explained({"runner": "inject"})
    assert why[("ConfigMap", "demo-runner")].startswith("berth run as a zipapp")
    assert "an image without python3 runs the command unsupervised" in why[("StatefulSet", "demo")]


def test_the_default_runner_is_the_images_berth_and_adds_nothing() -> None:
    objects = _objects({})
    assert "demo-runner" not in {o["metadata"]["name"] for o in objects}
    pod = next(o for o in objects if o["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    assert "berth-runner" not in {v["name"] for v in pod["volumes"]}
    assert "BERTH_RUNNER" not in {e["name"] for e in pod["containers"][0]["env"]}
    assert 'exec berth run -- "$@"' in pod["containers"][0]["command"][2]
    assert "an image without it runs the command unsupervised" in _explained({})[("StatefulSet", "demo")]


def test_an_unknown_runner_is_one_located_error(tmp_path: Path, berth: RunBerth) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text(BASE + "  lifecycle: {runner: sidecar}\n")
    result = berth("render", str(path))
    assert result.code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert errors == [f"{path}:8:23: spec.lifecycle.runner: Input should be 'image' or 'inject'"], result.stderr
