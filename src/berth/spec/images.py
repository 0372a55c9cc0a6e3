"""What an image's name says about the python3 that ``berth run``'s supervisor needs.

The supervisor (``spec.lifecycle``) is Python: the image's own berth, or the injected zipapp that
needs python3 3.11 or newer. Neither berth nor a linter can look inside an image, but a few base
images are known by name to ship no python3 at all (CUDA's, the distributions' own, the minimal
ones), and the official ``python`` image's tag says its version. On those the rendered command
runs the trainer unsupervised, which is easy to miss: the pod runs, and only finishes, fails or
stops differently. This is the one place that knowledge lives (explain and lint both ask it).
"""

from __future__ import annotations

import re

# Repository paths (any registry, any tag) of images that ship no python3, and what they are.
_NO_PYTHON = {
    "nvidia/cuda": "CUDA's images (base, runtime, devel, cudnn) ship no python3",
    "ubuntu": "the Ubuntu image ships no python3",
    "debian": "the Debian image ships no python3",
    "alpine": "the Alpine image ships no python3",
    "busybox": "BusyBox ships no python3",
}
# Prefixes of repository paths: every variant (static-debian12, base-nossl-debian12, cc-debian12, ...).
_NO_PYTHON_PREFIXES = {
    "distroless/static": "distroless static images ship no python3",
    "distroless/base": "distroless base images ship no python3",
    "distroless/cc": "distroless cc images ship no python3",
}
_PYTHON_TAG = re.compile(r"(\d+)\.(\d+)")
MIN_PYTHON = (3, 11)  # berth's floor, the zipapp's too (pyproject's requires-python)


def _repository(image: str) -> tuple[str, str]:
    """``(path, tag)`` of an image reference, without its registry host, ``library/``, or digest."""
    name = image.split("@", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts and parts[0] == "library":
        parts = parts[1:]
    last, _, tag = parts[-1].partition(":") if parts else ("", "", "")
    return "/".join([*parts[:-1], last]).lower(), tag


def python_problem(image: str) -> str | None:
    """Why ``image`` cannot run the supervisor, as far as its name tells; None when it may."""
    path, tag = _repository(image)
    what = _NO_PYTHON.get(path) or next((v for p, v in _NO_PYTHON_PREFIXES.items() if path.startswith(p)), None)
    if what is not None:
        return what
    if path == "python" and (m := _PYTHON_TAG.match(tag)):
        version = (int(m.group(1)), int(m.group(2)))
        if version < MIN_PYTHON:
            return f"its python3 is {version[0]}.{version[1]}; berth run needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer"
    return None
