"""An image without a tag or with the `latest` tag.

## What it does
Flags container images with no tag, `:latest`, or a `latest-*` tag, unless pinned by digest.

## Why is this bad?
Replicas started at different times run different code; a restarted training job resumes
a checkpoint with a framework version that cannot read it.

## Example
```yaml
image: tensorflow/tensorflow:latest-gpu
```

Use instead:
```yaml
image: tensorflow/tensorflow:2.17.0-gpu
```

## Fix
Pin a version tag, or a digest (`@sha256:...`).
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import WORKLOAD_KINDS, pod_containers


def _unpinned(image: str) -> bool:
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return True
    tag = last.split(":", 1)[1]
    return tag == "latest" or tag.startswith("latest-")


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    for container, path in pod_containers(doc):
        image = container.get("image")
        if isinstance(image, str) and _unpinned(image):
            yield Hit((*path, "image"), f"image {image!r} is not pinned to a version", "use a version tag or digest")


RULE = Rule(
    id="image-latest-tag",
    severity=Severity.WARNING,
    doc=__doc__ or "",
    check=check,
    kinds=WORKLOAD_KINDS,
    equivalents={"kube-linter": "latest-tag", "kube-score": "container-image-tag", "polaris": "tagNotSpecified"},
)
