"""terminationGracePeriodSeconds sized from spec.lifecycle.checkpointSize and the checkpoint class's throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.render import render_all
from berth.spec.model import TrainingCluster

from ..conftest import RunBerth
from ..spec.test_lifecycle_spec import BASE as LIFECYCLE_BASE

BASE = (
    LIFECYCLE_BASE
    + """\
  storageClasses:
    fast: {provider: aws-ebs, type: gp3, throughput: 500, tier: hot}
    plain: {existing: true, tier: hot}
  volumes:
    ckpt: {mountPath: /ckpt, size: 200Gi, storageClass: fast}
"""
)


def _grace(**spec: Any) -> tuple[int, str]:
    doc = yaml.safe_load(BASE)
    doc["spec"].update(spec)
    sts = next(o for o in render_all(TrainingCluster.model_validate(doc)) if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    return pod["terminationGracePeriodSeconds"], env.get("BERTH_TERMINATION_GRACE", "")


def test_sized_from_the_checkpoint_size_and_the_class_throughput() -> None:
    # 40 GiB at 500 MiB/s: 82 s a save, two of them (one in flight, the final one), plus 60 s.
    assert _grace(lifecycle={"checkpointSize": "40Gi"}) == (ceil_2x(40 * 1024, 500) + 60, "224")
    assert _grace(lifecycle={"checkpointSize": "1Gi"}) == (65, "65")


def test_unknown_throughput_assumes_100_mib_s() -> None:
    plain = {"ckpt": {"mountPath": "/ckpt", "size": "200Gi", "storageClass": "plain"}}
    assert _grace(volumes=plain, lifecycle={"checkpointSize": "40Gi"}) == (880, "880")


def test_an_explicit_grace_period_wins_and_without_a_size_nothing_changes() -> None:
    assert _grace(lifecycle={"checkpointSize": "40Gi"}, terminationGracePeriodSeconds=90) == (90, "90")
    assert _grace(lifecycle={}) == (600, "600")
    assert _grace()[0] == 600  # no lifecycle: as before


def ceil_2x(mib: int, throughput: int) -> int:
    return -(-2 * mib // throughput)


@pytest.mark.parametrize("size", ["lots", "-1Gi", "0"])
def test_a_bad_checkpoint_size_is_one_located_error(size: str, tmp_path: Path, berth: RunBerth) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text(BASE + f"  lifecycle: {{checkpointSize: '{size}'}}\n")
    result = berth("render", str(path))
    assert result.code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert len(errors) == 1 and "checkpointSize" in errors[0], result.stderr
