"""`berth explain` says what a pod gives up when nothing supervises its trainer.

Three ways to end up preamble-only (docs/lifecycle.md): no `spec.lifecycle`; `runner: image` with
an image that has no berth; `runner: inject` with an image that has no python3. Each says so on the
StatefulSet's line, through the CLI a user runs.
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    ("image", "said"),
    [
        ("nvidia/cuda:12.4.1-runtime-ubuntu22.04", "CUDA's images (base, runtime, devel, cudnn) ship no python3"),
        ("python:3.9-slim", "its python3 is 3.9; berth run needs 3.11 or newer"),
        ("python:3.12-slim", None),
    ],
)
def test_explain_warns_when_the_image_is_known_to_lack_the_supervisors_python(
    tmp_path: Path, berth: RunBerth, image: str, said: str | None
) -> None:
    """Lint and explain see only the image's name; for the base images known to ship no python3 (or an
    old one) that is enough to say the supervisor will not run, before any pod starts."""
    assert "image: example.com/trainer:1.0\n" in BASE
    path = tmp_path / "berth.yaml"
    path.write_text(
        BASE.replace("image: example.com/trainer:1.0\n", f"image: {image}\n") + "  lifecycle: {runner: inject}\n"
    )
    result = berth("explain", str(path))
    assert result.code == 0, result.stderr
    text = " ".join(result.stdout.split())
    if said is None:
        assert "WARNING" not in text, text
    else:
        assert f"WARNING: image {image}: {said}, so this one will run unsupervised" in text, text
    linted = berth("lint", str(path), "-o", "json")
    codes = [f["rule"] for f in json.loads(linted.stdout)]
    assert ("supervisor-without-python" in codes) == (said is not None), linted.stdout
