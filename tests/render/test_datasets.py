"""spec.datasets rendered: the populate Job and the trainers' init containers, pinned; bad input located."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from berth.contract import DATASET_COMPONENT
from berth.render import render_all
from berth.render.datasets import WAIT_SCRIPT
from berth.runtime.stage import SourceFile, _Journal
from berth.spec.load import load_spec

from ..conftest import RunBerth

SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: demo, namespace: ml}
spec:
  replicas: 3
  image: trainer:1
  command: ["python3", "train.py"]
  storageClasses:
    standard: {existing: true}
  volumes:
    scratch: {mountPath: /scratch, size: 10Gi, storageClass: standard}
  sharedVolumes:
    data: {claimName: demo-data, mountPath: /data, size: 1Ti, storageClass: standard, accessMode: ReadOnlyMany}
  initContainers:
    - {name: warm-cache, command: ["true"]}
  datasets:
    imagenet: {source: s3://datasets/imagenet, into: data, path: imagenet, secretName: s3-creds, endpoint: http://minio:9000,
      concurrency: 16}
    corpus: {source: s3://datasets/corpus, into: scratch, path: corpus, shard: perRank, region: eu-west-1}
"""

SECURITY = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _render(tmp_path: Path, text: str = SPEC) -> list[dict[str, Any]]:
    path = tmp_path / "berth.yaml"
    path.write_text(text)
    return render_all(load_spec(path))


def _kinds(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_shared_dataset_is_one_populate_job_after_its_claim(tmp_path: Path) -> None:
    objects = _render(tmp_path)
    [job] = _kinds(objects, "Job")
    order = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert order.index(("PersistentVolumeClaim", "demo-data")) < order.index(("Job", job["metadata"]["name"]))
    assert order.index(("Job", job["metadata"]["name"])) < order.index(("StatefulSet", "demo"))
    name = job["metadata"]["name"]
    assert name.startswith("demo-imagenet-") and len(name) == len("demo-imagenet-") + 6
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == DATASET_COMPONENT
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == DATASET_COMPONENT
    assert job["spec"]["backoffLimit"] == 6
    assert pod["restartPolicy"] == "OnFailure"  # a killed copier resumes in the same pod
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("demo", False)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["fsGroup"] == 1000
    assert pod["volumes"] == [{"name": "dataset", "persistentVolumeClaim": {"claimName": "demo-data"}}]
    assert pod["containers"] == [
        {
            "name": "stage",
            "image": "trainer:1",
            "command": [
                "berth",
                "stage",
                "s3://datasets/imagenet",
                "/dataset/imagenet",
                "--concurrency",
                "16",
                "--report",
                "/dev/termination-log",
            ],
            "env": [
                {
                    "name": "AWS_ACCESS_KEY_ID",
                    "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}},
                },
                {
                    "name": "AWS_SECRET_ACCESS_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}},
                },
                {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"},
                {
                    "name": "AWS_REGION",
                    "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_REGION", "optional": True}},
                },
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": SECURITY,
            "volumeMounts": [{"name": "dataset", "mountPath": "/dataset"}],  # writable: only the Job writes
        }
    ]


def test_trainers_wait_for_a_shared_dataset_and_stage_their_own_shard(tmp_path: Path) -> None:
    [sts] = _kinds(_render(tmp_path), "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-imagenet", "stage-corpus", "warm-cache"]
    wait, stage, _ = pod["initContainers"]
    assert wait["command"] == [
        "/bin/sh", "-c", WAIT_SCRIPT, "wait-imagenet",
        "/data/imagenet/.berth-stage/manifest.json", '"source": "s3://datasets/imagenet"', "imagenet",
    ]  # fmt: skip
    assert wait["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert wait["image"] == "trainer:1" and wait["securityContext"] == SECURITY
    assert stage["command"] == [
        "berth", "stage", "s3://datasets/corpus", "/scratch/corpus",  # no concurrency: berth stage picks
        "--report", "/dev/termination-log", "--shard", "$(POD_INDEX)/3",
    ]  # fmt: skip
    # No Secret: no keys at all, so boto3 falls back to the pod's cloud identity.
    assert stage["env"] == [
        {
            "name": "POD_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
        },
        {"name": "AWS_REGION", "value": "eu-west-1"},
    ]
    assert stage["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    trainer = pod["containers"][0]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in trainer["volumeMounts"]
    # Read-only in every container's mount, not as a pod volume: the kubelet gives a read-only pod volume no
    # fsGroup ownership, and sets ownership only on a node's first mount, which may be a trainer's.
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "demo-data", "readOnly": False}} in pod["volumes"]


def test_a_changed_dataset_gets_a_new_job_and_other_changes_keep_it(tmp_path: Path) -> None:
    """A Job's pod template is immutable: the name must change exactly when the template does."""

    def job_name(text: str) -> str:
        [job] = _kinds(_render(tmp_path, text), "Job")
        return str(job["metadata"]["name"])

    base = job_name(SPEC)
    assert job_name(SPEC.replace("replicas: 3", "replicas: 5")) == base
    assert job_name(SPEC.replace("s3://datasets/imagenet", "s3://datasets/imagenet-v2")) != base
    assert job_name(SPEC.replace("path: imagenet,", "path: in1k,")) != base


@pytest.mark.parametrize("other_source", [False, True])
def test_wait_script_passes_only_on_the_manifest_berth_stage_writes(tmp_path: Path, other_source: bool) -> None:
    """The rendered /bin/sh script, run by a real sh against a manifest written by berth stage's own journal."""
    [sts] = _kinds(_render(tmp_path), "StatefulSet")
    wait = sts["spec"]["template"]["spec"]["initContainers"][0]
    manifest_path = Path(wait["command"][4])
    dest = tmp_path / "vol" / manifest_path.relative_to("/data").parent.parent
    journal = _Journal(dest, "s3://datasets/other" if other_source else "s3://datasets/imagenet")
    journal.open()
    journal.record(SourceFile("a.bin", 1, "etag", "http://x/a.bin"))
    journal.commit()
    argv = [*wait["command"][:4], str(dest / ".berth-stage" / "manifest.json"), *wait["command"][5:]]
    if other_source:
        with pytest.raises(subprocess.TimeoutExpired):  # still waiting: that manifest is another source's
            subprocess.run(argv, capture_output=True, timeout=3)
    else:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert done.returncode == 0 and done.stdout == "dataset imagenet is ready\n"


BAD = [
    ("into: nowhere", "into", 3, "no volume named 'nowhere' (sharedVolumes and volumes: data, scratch)"),
    ("into: data, shard: perRank", "shard", 3, "perRank sharding needs each pod's own volume"),
    ("into: data, path: ../up", "path", 3, "'../up' is not a plain relative directory"),
    ("into: data, path: .berth-stage", "path", 3, "is not a plain relative directory"),
    ("into: data, endpoint: minio:9000", "endpoint", 3, "'minio:9000' is not an http(s) URL"),
]


@pytest.mark.parametrize(("fields", "field", "line", "message"), BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_datasets_are_located(
    tmp_path: Path, berth: RunBerth, fields: str, field: str, line: int, message: str
) -> None:
    datasets = f"  datasets:\n    x:\n      {{source: s3://bucket/prefix, {fields}}}\n"
    text = SPEC.split("  datasets:\n")[0] + datasets
    path = tmp_path / "berth.yaml"
    path.write_text(text)
    result = berth("render", str(path))
    assert result.code == 2, result.stdout
    first = text.count("\n") - 3 + line  # the line of the flow mapping
    column = text.splitlines()[first - 1].index(f"{field}: ") + len(field) + 3  # the value's column
    assert result.stderr.startswith(f"{path}:{first}:{column}: spec.datasets.x.{field}: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cross_dataset_and_source_checks(tmp_path: Path, berth: RunBerth) -> None:
    text = SPEC.split("  datasets:\n")[0] + (
        "  datasets:\n"
        "    a: {source: s3://bucket/a, into: data, path: shared}\n"
        "    b: {source: s3://bucket/b, into: data, path: shared/inner}\n"
        "    c: {source: https://example.com/files/c.tar, into: scratch, secretName: creds}\n"
    )
    path = tmp_path / "berth.yaml"
    path.write_text(text)
    result = berth("render", str(path))
    assert result.code == 2
    end = text.count("\n")
    assert f"{path}:{end - 1}:" in result.stderr and "spec.datasets.b.path: datasets a and b would share a " in (
        result.stderr
    )
    assert "directory of volume data (shared and shared/inner)" in result.stderr
    assert f"{path}:{end}:" in result.stderr and "spec.datasets.c.secretName: secretName is for s3:// sources" in (
        result.stderr
    )
    path.write_text(text.replace("https://example.com/files/c.tar", "ftp://example.com/c"))
    bad = berth("render", str(path))
    assert bad.code == 2 and f"{path}:{end}:17: spec.datasets.c.source: 'ftp://example.com/c' is neither" in bad.stderr


def test_examples_dataset_job_is_a_valid_batch_job(examples: dict[str, Any]) -> None:
    """The example renders a Job the official schema accepts (the schema test covers every example too)."""
    rendered = examples["pytorch-datasets"]
    job = rendered.one("Job")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    keys = [e for e in env if e["name"].startswith("AWS_") and "KEY" in e["name"]]
    assert len(keys) == 2 and all("value" not in e and "secretKeyRef" in e["valueFrom"] for e in keys)
    assert job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared-dataset"
