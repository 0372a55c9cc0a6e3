"""``berth restore NAME --from-archive s3://…`` against the sandbox's kube-apiserver and a real SeaweedFS.

The archive is written by the real CheckpointManager into SeaweedFS on 127.0.0.1; the objects the
restore writes are applied to the real API server (server-side apply, validated), on the kwok
nodes of the shared sandbox. The pods do not run here: tests/cluster/test_restore_archive_in_pod.py
runs the seed and the trainer in real pods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.checkpoint import CheckpointManager
from berth.runtime.agree import alone

from ..runtime.conftest import Seaweed, running_seaweed
from .cluster_helpers import berth, seed_like, write_spec

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("weed")) as server:
        yield server


def _archive(weed: Seaweed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bucket: str) -> str:
    """Two ranks archive steps 3 and 6; rank 0 also 9 (rank 1 died before it): the agreed step is 6."""
    for key, value in weed.env.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{weed.bucket(bucket)}/run"
    for rank, steps in ((0, [3, 6, 9]), (1, [3, 6])):
        with CheckpointManager(tmp_path / f"r{rank}", rank=rank, world_size=2, archive=url, agree=alone) as mgr:
            for step in steps:
                mgr.save(step, {"w": [step, rank]}, blocking=True)
            assert mgr.wait_archived(60)
    return url


def _statefulset(kubeconfig: Path, ns: str) -> dict[str, Any] | None:
    from lightkube import Client, KubeConfig
    from lightkube.resources.apps_v1 import StatefulSet

    client = Client(KubeConfig.from_file(kubeconfig), namespace=ns)
    found = [s.to_dict() for s in client.list(StatefulSet, namespace=ns)]
    return dict(found[0]) if found else None


def test_restore_from_archive_dry_run_apply_and_refusals(
    kubeconfig: Path,
    make_namespace: Callable[..., str],
    tmp_path: Path,
    weed: Seaweed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _archive(weed, monkeypatch, tmp_path, "restore-cp")
    ns = make_namespace()
    archive = {"url": url, "secretName": "ckpt-s3", "endpoint": weed.endpoint}
    spec = write_spec(tmp_path, seed_like(ns, replicas=2, archive=archive))
    restore = ("restore", "ml-training", "--from-archive", url, "-f", str(spec))

    # Dry run: the archive's agreed step and the init container; nothing in the namespace.
    dry = berth(*restore, "-o", "json", kubeconfig=kubeconfig, env=weed.env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert (plan["dryRun"], plan["step"], plan["worldSize"], plan["blockers"]) == (True, 6, 2, [])
    init = plan["initContainer"]
    assert init["command"][:3] == ["berth", "seed", "/mnt/models/checkpoints"]
    assert init["command"][3:] == [
        "--from",
        url,
        "--rank",
        "$(POD_INDEX)",
        "--world",
        "2",
        "--report",
        "/dev/termination-log",
    ]
    env = {e["name"]: e for e in init["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "name": "AWS_SECRET_ACCESS_KEY",
        "valueFrom": {"secretKeyRef": {"name": "ckpt-s3", "key": "AWS_SECRET_ACCESS_KEY"}},
    }
    assert env["AWS_ENDPOINT_URL"]["value"] == weed.endpoint
    assert _statefulset(kubeconfig, ns) is None
    text = berth(*restore, kubeconfig=kubeconfig, env=weed.env)
    assert text.returncode == 0 and f"from {url}: step 6, 2 ranks" in text.stdout, text.stdout + text.stderr
    assert "seed-checkpoints" in text.stdout

    # --yes: the API server takes the stack; the seed runs first in every pod, keys never in the object.
    done = berth(*restore, "--yes", "--no-wait", kubeconfig=kubeconfig, env=weed.env)
    assert done.returncode == 0, done.stdout + done.stderr
    sts = _statefulset(kubeconfig, ns)
    assert sts is not None
    pod = sts["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["name"] == "seed-checkpoints"
    assert pod["initContainers"][0]["volumeMounts"] == [{"name": "model-storage", "mountPath": "/mnt/models"}]
    assert weed.env["AWS_SECRET_ACCESS_KEY"] not in json.dumps(sts)
    assert "berth.dev/spec" in sts["metadata"]["annotations"]

    # Again: the cluster runs now, refused, nothing changes.
    again = berth(*restore, "--yes", kubeconfig=kubeconfig, env=weed.env)
    assert again.returncode == 3 and "cluster ml-training is running in" in again.stdout, again.stdout
    down = berth("down", "ml-training", "-n", ns, "--yes", kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stderr
    claims = berth(*restore, "-o", "json", kubeconfig=kubeconfig, env=weed.env)
    assert claims.returncode == 3, claims.stdout + claims.stderr
    blocked = json.loads(claims.stdout)
    assert len(blocked["existingClaims"]) == 4 and "the seed never overwrites" in blocked["blockers"][0]


def test_restore_from_archive_bad_input_one_line_each(
    kubeconfig: Path,
    make_namespace: Callable[..., str],
    tmp_path: Path,
    weed: Seaweed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = make_namespace()
    for key, value in weed.env.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{weed.bucket('restore-bad')}/run"
    with CheckpointManager(tmp_path / "r0", rank=0, world_size=2, archive=url, agree=alone) as mgr:
        mgr.save(1, {"w": [1]}, blocking=True)  # rank 1 never archived
        assert mgr.wait_archived(60)
    archive = {"url": url, "secretName": "ckpt-s3", "endpoint": weed.endpoint}
    spec = write_spec(tmp_path, seed_like(ns, replicas=2, archive=archive))

    def restore(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        done = berth("restore", "ml-training", *args, kubeconfig=kubeconfig, env={**weed.env, **(env or {})})
        assert "Traceback" not in done.stderr, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) <= 1, done.stderr
        return done.returncode, done.stdout + done.stderr

    code, out = restore("--from-archive", url, "-f", str(spec), "--yes")
    assert code == 3 and "no step has a complete shard for every one of 2 ranks" in out
    code, out = restore("--from-archive", url, "-f", str(spec), env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert code == 1 and "refused the credentials" in out
    code, out = restore("--from-archive", "s3://not-a-bucket-of-ours/x", "-f", str(spec))
    assert code == 1 and "bucket not-a-bucket-of-ours does not exist" in out
    code, out = restore("--from-archive", url, "-f", str(spec), env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert code == 1 and "cannot reach the object store at http://127.0.0.1:9" in out
    code, out = restore("--from-archive", url)
    assert code == 2 and "--from-archive needs the cluster's spec" in out
    code, out = restore("--from-archive", url, "--from-backup", "b", "-f", str(spec))
    assert code == 2 and "exactly one of" in out
    no_archive = write_spec(tmp_path, seed_like(ns, replicas=2), "plain.yaml")
    code, out = restore("--from-archive", url, "-f", str(no_archive))
    assert code == 2 and "spec.archive is not set" in out
    other = berth("restore", "other", "--from-archive", url, "-f", str(spec), kubeconfig=kubeconfig, env=weed.env)
    assert other.returncode == 2 and "is the spec of ml-training, not other" in other.stderr
    assert _statefulset(kubeconfig, ns) is None  # nothing was ever applied
