"""Good specs load as written: the issue's own example, every example file, quantities exactly."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from berth.providers.limits import Tier
from berth.providers.presets import Provider
from berth.quantity import QuantityError, parse_quantity
from berth.rendezvous import Framework
from berth.spec.errors import SpecError
from berth.spec.load import load_spec, parse_spec, spec_from_data

from ..conftest import RunBerth, berth_process
from .spec_helpers import DATA, EXAMPLES, HEADER, REPO


def test_issue_example_loads_exactly_as_written() -> None:
    """The spec printed in issue 2 (tests/spec/data/issue2-example.yaml), byte for byte but for one line:
    issue 8 made a shared claim's class a declared one, so ``nfs-client: {existing: true}`` is added."""
    spec = load_spec(DATA / "issue2-example.yaml")
    s = spec.spec
    assert (spec.name, spec.namespace, spec.service_name) == ("ml-training", "ml", "tensorflow-training")
    assert (s.framework, s.replicas, s.port) == (Framework.TENSORFLOW, 3, 2222)
    assert s.image == "tensorflow/tensorflow:latest-gpu"
    assert s.command == ["python", "/workspace/train.py"]
    assert s.env == {"LOG_LEVEL": "info"}
    assert s.resources.requests == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert s.resources.limits == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    fast, nvme, standard = (s.storage_classes[n] for n in ("fast-ssd", "ml-nvme", "standard"))
    assert (fast.provider, fast.type, fast.iops, fast.throughput, fast.encrypted, fast.tier) == (
        Provider.AWS_EBS,
        "gp3",
        16000,
        1000,
        True,
        Tier.HOT,
    )
    assert (nvme.provider, nvme.type, nvme.iops_per_gb, nvme.encrypted, nvme.tier) == (
        Provider.AWS_EBS,
        "io2",
        64,
        True,
        Tier.HOT,
    )
    assert standard.existing and standard.tier is Tier.WARM
    assert {n: (v.mount_path, v.size, v.storage_class) for n, v in s.volumes.items()} == {
        "model-storage": ("/mnt/models", "100Gi", "fast-ssd"),
        "dataset-storage": ("/mnt/datasets", "500Gi", "standard"),
    }
    shared = s.shared_volumes["shared-data"]
    assert (shared.claim_name, shared.mount_path, shared.size, shared.storage_class, shared.access_mode) == (
        "shared-dataset",
        "/data",
        "1Ti",
        "nfs-client",
        "ReadOnlyMany",
    )
    assert s.archive is not None
    assert (s.archive.url, s.archive.secret_name) == ("s3://ml-archive/ml-training", "s3-credentials")
    assert (s.security_context.run_as_user, s.security_context.fs_group) == (1000, 1000)
    assert (s.disruption.min_available, s.disruption.max_unavailable) == (2, None)
    assert (s.volume_retention.when_scaled, s.volume_retention.when_deleted) == ("Retain", "Retain")
    assert (s.monitoring.prometheus, s.monitoring.service_monitor, s.monitoring.alerts) == (True, True, True)
    assert s.backup is not None and (s.backup.schedule, s.backup.ttl) == ("0 2 * * *", "720h")
    # The first hot volume holds checkpoints by default.
    assert spec.checkpoint_volume() == "model-storage"
    assert spec.checkpoint_dir() == "/mnt/models/checkpoints"


def test_issue_example_defaults_namespace() -> None:
    text = (DATA / "issue2-example.yaml").read_text().replace("{name: ml-training, namespace: ml}", "{name: x}")
    assert parse_spec(text).namespace == "default"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.spec.replicas >= 1


def test_examples_cover_every_framework_and_provider() -> None:
    specs = [load_spec(p) for p in EXAMPLES]
    assert {s.spec.framework for s in specs} >= {
        Framework.TENSORFLOW,
        Framework.PYTORCH,
        Framework.HOROVOD,
        Framework.JAX,
    }
    providers = {sc.provider for s in specs for sc in s.spec.storage_classes.values() if not sc.existing}
    assert providers == set(Provider)


def test_seed_tensorflow_is_the_guides_cluster() -> None:
    """The issue's list for examples/seed-tensorflow.yaml, item by item."""
    spec = load_spec(REPO / "examples" / "seed-tensorflow.yaml")
    s = spec.spec
    assert (s.framework, s.replicas, spec.service_name, s.port) == (
        Framework.TENSORFLOW,
        3,
        "tensorflow-training",
        2222,
    )
    fast = s.storage_classes["fast-ssd"]
    assert (fast.provider, fast.type, fast.iops, fast.throughput, fast.encrypted) == (
        Provider.AWS_EBS,
        "gp3",
        16000,
        1000,
        True,
    )
    assert s.volumes["model-storage"].model_dump(include={"mount_path", "size", "storage_class"}) == {
        "mount_path": "/mnt/models",
        "size": "100Gi",
        "storage_class": "fast-ssd",
    }
    assert s.volumes["dataset-storage"].model_dump(include={"mount_path", "size", "storage_class"}) == {
        "mount_path": "/mnt/datasets",
        "size": "500Gi",
        "storage_class": "standard",
    }
    assert len(s.volumes) == 2
    assert s.resources.requests == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert s.resources.limits == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    assert spec.gpus_per_pod == 1
    assert s.disruption.min_available == 2
    assert s.monitoring.prometheus
    assert s.backup is not None and s.backup.schedule == "0 2 * * *"


def test_seed_shared_dataset_is_the_guides_cluster() -> None:
    spec = load_spec(REPO / "examples" / "seed-shared-dataset.yaml")
    s = spec.spec
    assert (spec.name, spec.service_name, s.replicas, s.image) == (
        "ml-training-shared",
        "ml-service",
        5,
        "pytorch/pytorch:latest",
    )
    assert s.framework is Framework.PYTORCH
    ((name, shared),) = s.shared_volumes.items()
    assert (name, shared.claim_name, shared.size, shared.access_mode, shared.storage_class, shared.mount_path) == (
        "shared-data",
        "shared-dataset",
        "1Ti",
        "ReadOnlyMany",
        "nfs-client",
        "/data",
    )
    assert shared.read_only is True
    ((vname, vol),) = s.volumes.items()
    assert (vname, vol.size, vol.storage_class, vol.mount_path) == ("model-output", "50Gi", "fast-ssd", "/output")


def test_yaml_float_quantity_is_accepted() -> None:
    """``cpu: 0.5`` is what people write (the API server accepts it); it renders as the string 0.5."""
    from berth.render.workload import statefulset

    spec = parse_spec(HEADER + "  replicas: 1\n  image: busybox\n  resources: {requests: {cpu: 0.5, memory: 1e9}}\n")
    container = statefulset(spec)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "0.5", "memory": "1000000000.0"}
    assert parse_quantity(container["resources"]["requests"]["memory"]) == Decimal(10) ** 9


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100Gi", 100 * 2**30),
        ("1Ti", 2**40),
        ("500m", Decimal("0.5")),
        ("4", 4),
        ("1e3", 1000),
        ("1.5G", 1_500_000_000),
        ("2Ki", 2048),
        ("+7", 7),
        (".5", Decimal("0.5")),
        ("3E2", 300),
        ("1E", 10**18),
        ("10n", Decimal("1e-8")),
    ],
)
def test_quantities_parse_exactly(text: str, value: Decimal | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "suggestion"), [("100GB", "G or Gi"), ("1TB", "T or Ti"), ("5GiB", "Gi"), ("2K", "k or Ki")]
)
def test_quantity_typos_suggest_the_suffix(text: str, suggestion: str) -> None:
    with pytest.raises(QuantityError, match=suggestion):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["Gi", "1.2.3", "ten", "1 Gi", "", "0x10"])
def test_non_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_spec_from_stdin(berth: RunBerth, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((REPO / "examples" / "jax.yaml").read_text()))
    result = berth("explain", "-")
    assert result.code == 0, result.stderr
    assert "StatefulSet/jax-lm" in result.stdout


def test_bad_spec_from_stdin_names_stdin(berth: RunBerth, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(HEADER + "  replicas: 0\n  image: x\n"))
    result = berth("render", "-")
    assert result.code == 2
    assert result.stderr.startswith("<stdin>:5:13: spec.replicas: ")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  replicas: 2\n  image: busybox\n  comand: [x]\n", ":7:3: spec.comand: unknown field 'comand'"),
        (
            "  replicas: 2\n  image: busybox\n  storageClasses:\n    c: {provider: aws-ebs, type: gp3, iops: 99999}\n",
            ":8:45: spec.storageClasses.c.iops: gp3 iops 99999 is above the maximum 80000",
        ),
    ],
)
def test_real_process_exit_code_and_message(body: str, expected: str, write_spec: Callable[[str], Path]) -> None:
    """The console entry in a real interpreter: same line as in-process, exit 2, no traceback."""
    path = write_spec(HEADER + body)
    out = berth_process("render", str(path), timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines()[0] == f"{path}{expected}"
    assert out.stderr.splitlines()[1].startswith("  hint: ")


def test_real_process_renders_a_good_spec() -> None:
    out = berth_process("render", str(REPO / "examples" / "seed-tensorflow.yaml"), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("---\napiVersion: v1\nkind: Namespace\n")


@pytest.mark.parametrize(
    "schedule",
    ["@every 6h", "0 2 * * mon-fri", "*/15 * * * *", "0 0 1 jan *", "0 0 * * 7", "5,10 1-3/2 * * *", "@daily"],
)
def test_velero_cron_forms_are_accepted(schedule: str) -> None:
    spec = parse_spec(
        HEADER + f"  replicas: 1\n  image: x\n  backup: {{schedule: '{schedule}', snapshotVolumes: false}}\n"
    )
    assert spec.spec.backup is not None and spec.spec.backup.schedule == schedule


@pytest.mark.parametrize("path", ["/ckpt", "/ckpt/run-1", "/data/ckpt"])
def test_checkpoint_path_on_a_volume_is_accepted(path: str) -> None:
    spec = parse_spec(
        HEADER + "  replicas: 1\n  image: x\n  storageClasses: {c: {existing: true}}\n"
        "  volumes: {v: {mountPath: /ckpt, size: 1Gi, storageClass: c}}\n"
        "  sharedVolumes: {d: {claimName: d, mountPath: /data, size: 1Ti, accessMode: ReadWriteMany}}\n"
        f"  checkpointPath: {path}\n"
    )
    assert spec.checkpoint_dir() == path


def test_parsed_data_is_validated_like_text() -> None:
    """``spec_from_data``: the same problems as from text; located only when given a locator."""
    text = HEADER + "  replicas: 0\n  image: busybox\n"
    with pytest.raises(SpecError) as from_text:
        parse_spec(text)
    data = yaml.safe_load(text)
    with pytest.raises(SpecError) as unplaced:
        spec_from_data(data)
    with pytest.raises(SpecError) as placed:
        spec_from_data(data, "<spec>", lambda path, *, key=False: (len(path), 7))
    assert [(i.path, i.message, i.line) for i in unplaced.value.issues] == [
        (i.path, i.message, None) for i in from_text.value.issues
    ]
    assert [(i.line, i.column) for i in placed.value.issues] == [(2, 7)]
    assert spec_from_data(yaml.safe_load(text.replace("replicas: 0", "replicas: 1"))).spec.replicas == 1
