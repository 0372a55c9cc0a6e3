"""What an image's name tells about the supervisor's python3 (berth.spec.images), reference by reference."""

from __future__ import annotations

import pytest

from berth.spec.images import python_problem


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("nvidia/cuda:12.4.1-runtime-ubuntu22.04", "CUDA's images"),
        ("registry.example.com:5000/nvidia/cuda:12.4.1-devel-ubuntu22.04", "CUDA's images"),  # any registry
        ("localhost/nvidia/cuda@sha256:" + "0" * 64, "CUDA's images"),  # a digest, no tag
        ("ubuntu", "Ubuntu"),
        ("library/debian:bookworm-slim", "Debian"),
        ("mirror.example.com/library/alpine:3.20", "Alpine"),
        ("busybox:1.36", "BusyBox"),
        ("example.com/distroless/static-debian12:nonroot", "distroless static"),
        ("example.com/distroless/base-nossl-debian12", "distroless base"),
        ("python:3.10.14-slim-bookworm", "its python3 is 3.10; berth run needs 3.11 or newer"),
        ("python:2.7", "its python3 is 2.7"),
        # Fine, or not known from the name: never guessed.
        ("python:3.11", None),
        ("python:3.13-alpine", None),
        ("python:latest", None),
        ("python", None),
        ("example.com/distroless/python3-debian12", None),
        ("myorg/ubuntu:1.0", None),  # someone's own image that happens to be called ubuntu
        ("example.com:5000/team/cuda-trainer:12.4", None),
        ("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", None),
        ("", None),
    ],
)
def test_python_problem(image: str, problem: str | None) -> None:
    said = python_problem(image)
    if problem is None:
        assert said is None, said
    else:
        assert said is not None and problem in said, said
