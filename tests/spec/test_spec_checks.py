"""Spec checks a new user met: reserved mount paths, undeclared classes on shared claims, and
every problem reported on the first run (storage limits no longer wait for field errors)."""

from __future__ import annotations

import pytest

from berth.spec.errors import SpecError
from berth.spec.load import parse_spec

HEADER = "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: demo}\nspec:\n"
BASE = "  replicas: 2\n  image: busybox\n"
GP3 = "  storageClasses:\n    c: {provider: aws-ebs, type: gp3}\n"


def _at(body: str, line: int, token: str) -> tuple[int, int]:
    """1-based (line, column) of ``token`` on ``line`` of the whole file, found by text search."""
    return line, (HEADER + body).splitlines()[line - 1].index(token) + 1


def _issues(body: str) -> list[tuple[int | None, int | None, str, str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec(HEADER + body, "s.yaml")
    return [(i.line, i.column, i.dotted, i.message) for i in caught.value.issues]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/", "a volume mounted at / would hide the image's whole file system: use a directory"),
        ("//", "a volume mounted at / would hide the image's whole file system: use a directory"),
        ("/var/run/secrets", "'/var/run/secrets' is under /var/run/secrets, which the container runtime or kubelet"),
        ("/var/run/secrets/kubernetes.io/x", "is under /var/run/secrets, which the container runtime or kubelet"),
        ("/run//secrets/", "is under /run/secrets, which the container runtime or kubelet mounts itself"),
        ("/proc/x", "is under /proc, which the container runtime or kubelet mounts itself"),
    ],
)
def test_reserved_mount_paths_are_refused_at_the_path(path: str, message: str) -> None:
    issues = _issues(BASE + GP3 + f"  volumes:\n    v: {{mountPath: '{path}', size: 1Ti, storageClass: c}}\n")
    assert len(issues) == 1, issues
    line, col, where, text = issues[0]
    assert (line, col, where) == (10, 20, "spec.volumes.v.mountPath")  # the value after "v: {mountPath: "
    assert message in text


@pytest.mark.parametrize("path", ["/secrets", "/var/run/secretsdata", "/data/proc", "/dev/shm"])
def test_ordinary_mount_paths_still_load(path: str) -> None:
    spec = parse_spec(HEADER + BASE + GP3 + f"  volumes:\n    v: {{mountPath: '{path}', size: 1Ti, storageClass: c}}\n")
    assert spec.spec.volumes["v"].mount_path == path.rstrip("/")


def test_shared_volume_on_an_undeclared_class_is_an_error() -> None:
    body = BASE + GP3 + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, size: 1Ti, storageClass: nope}\n"
    assert _issues(body) == [
        (*_at(body, 10, "nope"), "spec.sharedVolumes.d.storageClass", "unknown storage class 'nope' (declared: c)"),
    ]


def test_existing_shared_claim_needs_no_declared_class() -> None:
    body = BASE + GP3 + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, existing: true, storageClass: any}\n"
    assert parse_spec(HEADER + body).spec.shared_volumes["d"].existing


def test_first_run_reports_field_errors_and_storage_limits_together() -> None:
    body = (
        BASE
        + "  comand: [x]\n"
        + "  storageClasses:\n    c: {provider: aws-ebs, type: gp3, iops: 99999}\n"
        + "  volumes:\n    v: {mountPath: /v, size: 99Ti, storageClass: c}\n"
    )
    issues = _issues(body)
    assert [(line, col, where) for line, col, where, _ in issues] == [
        (7, 3, "spec.comand"),
        (*_at(body, 9, "99999"), "spec.storageClasses.c.iops"),
        (*_at(body, 11, "99Ti"), "spec.volumes.v.size"),
    ]
    assert "gp3 iops 99999 is above the maximum 80000" in issues[1][3]
    assert issues[2][3] == "gp3 volumes are at most 65536 GiB, got 101376 GiB"


def test_a_class_with_its_own_field_error_gets_no_second_opinion() -> None:
    """A class that is not valid on its own is reported once, by its field error."""
    body = BASE + "  storageClasses:\n    c: {provider: aws-ebs, type: gp3, iops: many}\n"
    issues = _issues(body)
    assert [where for _, _, where, _ in issues] == ["spec.storageClasses.c.iops"]
