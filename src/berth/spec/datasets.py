"""``spec.datasets``: where each dataset lands, and the checks that keep two of them apart.

A dataset goes ``into`` a volume of the spec. Into a shared volume (``spec.sharedVolumes``) it is
filled once, by a populate Job, and every trainer waits for it; into a per-pod volume
(``spec.volumes``) each pod's init container stages its own copy (or its shard). Both run
``berth stage``, which keeps its state in ``<dir>/.berth-stage``: two datasets in one directory
(or one inside the other) would share that state and overwrite each other's files, so that is
refused here, with the field to blame.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from berth.contract import STAGE_STATE_DIR
from berth.spec.errors import SpecIssue
from berth.spec.model import DatasetSpec, TrainingCluster

# Kubernetes labels each Job's pods with its name (``batch.kubernetes.io/job-name``): at most 63.
JOB_NAME_MAX = 63
# ``-<hash>`` berth appends to a populate Job's name, so a changed dataset gets a new Job (a Job's
# pod template cannot be changed once created).
JOB_HASH_LEN = 6


@dataclass(frozen=True)
class Target:
    """Where dataset ``name`` lands: the volume, whether it is shared, and the directory in the trainer."""

    name: str
    dataset: DatasetSpec
    volume: str
    shared: bool
    mount_path: str

    @property
    def directory(self) -> str:
        """The dataset's directory as the trainer sees it (the volume's mount path, plus ``path``)."""
        return posixpath.join(self.mount_path, self.dataset.path) if self.dataset.path else self.mount_path


def targets(spec: TrainingCluster) -> list[Target]:
    """Every dataset whose ``into`` names a volume (the checks report the others)."""
    out = []
    for name, ds in spec.spec.datasets.items():
        shared = spec.spec.shared_volumes.get(ds.into)
        if shared is not None:
            out.append(Target(name, ds, ds.into, True, shared.mount_path))
        elif ds.into in spec.spec.volumes:
            out.append(Target(name, ds, ds.into, False, spec.spec.volumes[ds.into].mount_path))
    return out


def populate_job_prefix(spec: TrainingCluster, dataset: str) -> str:
    """``<cluster>-<dataset>``: the populate Job's name before its hash."""
    return f"{spec.name}-{dataset}"


def init_container_name(dataset: str, *, shared: bool) -> str:
    """The trainer pod's init container for a dataset: ``wait-<name>`` (shared) or ``stage-<name>``."""
    return f"{'wait' if shared else 'stage'}-{dataset}"


def check_datasets(spec: TrainingCluster) -> Iterator[SpecIssue]:
    """Each dataset names a volume, a safe directory in it, and options that fit its source and volume."""
    s = spec.spec
    seen: dict[tuple[str, str], str] = {}
    for name, ds in s.datasets.items():
        base = ("spec", "datasets", name)
        if ds.into not in s.shared_volumes and ds.into not in s.volumes:
            known = ", ".join([*s.shared_volumes, *s.volumes]) or "none declared"
            yield SpecIssue(
                (*base, "into"),
                f"no volume named {ds.into!r} (sharedVolumes and volumes: {known})",
                "name a spec.sharedVolumes entry (filled once) or a spec.volumes entry (each pod its own copy)",
            )
            continue
        shared = ds.into in s.shared_volumes
        parts = ds.path.split("/")
        if ds.path and (
            ds.path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == STAGE_STATE_DIR
        ):
            yield SpecIssue(
                (*base, "path"),
                f"{ds.path!r} is not a plain relative directory inside the volume",
                "e.g. path: imagenet (no leading '/', no '.' or '..', not .berth-stage)",
            )
            continue
        if ds.shard == "perRank" and shared:
            yield SpecIssue(
                (*base, "shard"),
                "a shared volume is filled once for every pod; perRank sharding needs each pod's own volume",
                "put the dataset into a spec.volumes entry, or use shard: whole",
            )
        http = not ds.source.startswith("s3://")
        for field, value in (("secretName", ds.secret_name), ("endpoint", ds.endpoint), ("region", ds.region)):
            if http and value is not None:
                yield SpecIssue(
                    (*base, field),
                    f"{field} is for s3:// sources; {ds.source.split('?')[0]} is fetched as it is",
                    f"remove {field} (a presigned or public https:// URL needs no credentials)",
                )
        if ds.endpoint is not None and not ds.endpoint.startswith(("http://", "https://")):
            yield SpecIssue((*base, "endpoint"), f"{ds.endpoint!r} is not an http(s) URL", "e.g. http://minio:9000")
        if shared and len(populate_job_prefix(spec, name)) + 1 + JOB_HASH_LEN > JOB_NAME_MAX:
            yield SpecIssue(
                base,
                f"the populate Job's name {populate_job_prefix(spec, name)}-<hash> would be longer than "
                f"{JOB_NAME_MAX} characters (Kubernetes puts it in a label)",
                f"shorten the dataset's name to at most {JOB_NAME_MAX - JOB_HASH_LEN - 2 - len(spec.name)} characters",
            )
        container = init_container_name(name, shared=shared)
        if len(container) > JOB_NAME_MAX:
            yield SpecIssue(
                base,
                f"its init container {container} would be longer than {JOB_NAME_MAX} characters",
                "shorten the dataset's name",
            )
        if container in {c.get("name") for c in [*s.init_containers, *s.sidecars]}:
            yield SpecIssue(
                base,
                f"berth names this dataset's init container {container!r}, as one of spec.initContainers/sidecars",
                "rename that container or the dataset",
            )
        for (volume, other_path), other in seen.items():
            if volume == ds.into and (
                other_path == ds.path or not other_path or not ds.path or _inside(ds.path, other_path)
            ):
                yield SpecIssue(
                    (*base, "path"),
                    f"datasets {other} and {name} would share a directory of volume {ds.into} "
                    f"({other_path or '/'} and {ds.path or '/'})",
                    "give each dataset its own path in the volume, neither inside the other",
                )
                break
        seen[(ds.into, ds.path)] = name


def _inside(a: str, b: str) -> bool:
    return a.startswith(b + "/") or b.startswith(a + "/")
