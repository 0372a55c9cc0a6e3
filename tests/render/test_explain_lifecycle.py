"""`berth explain` says what a pod gives up when nothing supervises its trainer.

Three ways to end up preamble-only (docs/lifecycle.md): no `spec.lifecycle`; `runner: image` with
an image that has no berth; `runner: inject` with an image that has no python3. Each says so on the
StatefulSet's line, through the CLI a user runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import RunBerth
from ..spec.test_lifecycle_spec import BASE


@pytest.mark.parametrize(
    ("lifecycle", "said"),
    [
        (
            "",
            "no spec.lifecycle: a trainer that exits 0 is restarted and a crashed rank is not restarted with its peers",
        ),
        ("  lifecycle: {}\n", "(the image's berth; an image without it runs the command unsupervised)"),
        (
            "  lifecycle: {runner: inject}\n",
            "(injected; an image without python3 runs the command unsupervised: no completion, no gang restart)",
        ),
    ],
    ids=["no-lifecycle", "runner-image", "runner-inject"],
)
def test_explain_says_what_an_unsupervised_pod_loses(
    tmp_path: Path, berth: RunBerth, lifecycle: str, said: str
) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text(BASE + lifecycle)
    result = berth("explain", str(path))
    assert result.code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "StatefulSet" in line and "demo" in line)
    assert said in " ".join(result.stdout.split()), line
