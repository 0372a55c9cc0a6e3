"""A trainer supervised by `berth run` in an image that has no python3 for it.

## What it does
Flags containers that run under `berth run`'s supervisor (env `BERTH_LIFECYCLE`, as berth renders
`spec.lifecycle`) whose image is known by its name to have no python3 for it: CUDA's images, the
Ubuntu, Debian, Alpine and BusyBox images, distroless static/base/cc (any registry, any tag), or
the `python` image at a version older than 3.11. Lint sees an image's name, not its contents: an
image of your own without python3 is not caught here (its pod's log says it at start).

## Why is this bad?
The supervisor is Python: the image's berth, or the injected zipapp (`lifecycle.runner: inject`)
that needs python3 3.11+. Without it the rendered command runs the trainer unsupervised — the pod
starts and trains, so nothing looks wrong, but a finished run is restarted forever, a crashed rank
is not restarted with its peers, and SIGTERM is not turned into a final save.

## Example
```yaml
      containers:
      - name: trainer
        image: nvidia/cuda:12.4.1-runtime-ubuntu22.04
        command: [/bin/sh, -c, "<rendezvous preamble>; exec berth run -- \"$@\"", --, ./train]
        env: [{name: BERTH_LIFECYCLE, value: scaleToZero}]
```

Use instead: an image built on it with python3 3.11+ (and berth, or `lifecycle.runner: inject`):
```yaml
        image: example.com/team/trainer:cuda12.4-py3.12
```

## Fix
Build the trainer image with python3 3.11 or newer (`FROM nvidia/cuda:…` plus the distribution's
python3 package), or use a framework image that has it; `lifecycle.runner: inject` then needs no
berth in the image.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, pod_containers, supervised
from berth.spec.images import python_problem


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc, init=False):
        image = container.get("image")
        if not isinstance(image, str) or not supervised(container, path):
            continue
        problem = python_problem(image)
        if problem is not None:
            yield Hit(
                (*path, "image"),
                f"berth run supervises this container, but {problem}: the trainer runs unsupervised "
                "(no completion, no gang restart, no final save on SIGTERM)",
                "use an image with python3 3.11+ (build on this one, docs/lifecycle.md)",
            )


RULE = Rule(
    id="supervisor-without-python",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
)
