"""The spec commands end to end: render --out-dir DIR, init, explain, schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from berth.render.output import to_stream
from berth.spec.load import load_spec, parse_spec

from ..conftest import RunBerth
from .conftest import Rendered
from .render_helpers import EXAMPLES, ISSUE_EXAMPLE

FRAMEWORKS = ["tensorflow", "pytorch", "horovod", "jax", "none"]


def test_render_stdout_is_the_objects_in_order(berth: RunBerth, examples: dict[str, Rendered]) -> None:
    result = berth("render", str(EXAMPLES[0]))
    assert result.code == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs == examples[EXAMPLES[0].stem].objects


@pytest.mark.parametrize("name", ["pytorch", "jax"])
def test_render_to_dir_writes_one_file_per_object_and_a_kustomization(
    name: str, berth: RunBerth, tmp_path: Path, examples: dict[str, Rendered]
) -> None:
    out = tmp_path / "out"
    result = berth("render", str(next(p for p in EXAMPLES if p.stem == name)), "--out-dir", str(out))
    assert result.code == 0, result.stderr
    objects = examples[name].objects
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    files = kustomization["resources"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "kustomization.yaml"])
    # Listed in apply order, and the names sort in that order too (a glob applies them right).
    assert files == sorted(files)
    assert [yaml.safe_load((out / f).read_text()) for f in files] == objects
    for index, (file, obj) in enumerate(zip(files, objects, strict=True)):
        assert file == f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
    assert f"wrote {len(objects) + 1} files to {out}" in result.stderr


def test_render_again_into_the_same_dir_leaves_no_stale_objects_and_keeps_user_files(
    berth: RunBerth, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    by_name = {p.stem: p for p in EXAMPLES}
    assert berth("render", str(by_name["jax"]), "--out-dir", str(out)).code == 0
    (out / "notes.md").write_text("mine")
    assert berth("render", str(by_name["seed-tensorflow"]), "--out-dir", str(out)).code == 0
    listed = yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]
    # Only the second render's objects remain beside the user's own file: `kubectl apply -f out/` is exact.
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed, "kustomization.yaml", "notes.md"])
    assert (out / "notes.md").read_text() == "mine"


def test_render_to_a_file_path_is_a_usage_error(berth: RunBerth, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    result = berth("render", str(EXAMPLES[0]), "--out-dir", str(target))
    assert result.code == 2
    assert "exists and is not a directory" in result.stderr
    assert target.read_text() == "x"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_init_writes_a_spec_that_loads_and_renders(framework: str, berth: RunBerth, tmp_path: Path) -> None:
    path = tmp_path / "berth.yaml"
    result = berth("init", str(path), "--framework", framework, "--name", f"{framework}-run")
    assert result.code == 0, result.stderr
    text = path.read_text()
    assert text.count("\n#") + text.count("  #") >= 5  # commented, for people
    spec = load_spec(path)
    assert spec.spec.framework.value == framework
    assert spec.name == f"{framework}-run"
    assert berth("render", str(path)).code == 0
    # A new user's first spec must not start with warnings: pinned images, limits, spread, PDB.
    linted = berth("lint", str(path))
    assert linted.code == 0 and "0 errors, 0 warnings, 0 info" in linted.stdout, linted.stdout


def test_init_refuses_to_overwrite_without_force(berth: RunBerth, tmp_path: Path) -> None:
    path = tmp_path / "berth.yaml"
    path.write_text("mine")
    result = berth("init", str(path))
    assert result.code == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert path.read_text() == "mine"
    assert berth("init", str(path), "--force").code == 0
    assert load_spec(path).spec.framework.value == "pytorch"


def test_init_rejects_an_unknown_framework(berth: RunBerth, tmp_path: Path) -> None:
    result = berth("init", str(tmp_path / "x.yaml"), "--framework", "mxnet")
    assert result.code == 2
    assert "unknown framework 'mxnet'" in result.stderr
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_explain_has_one_line_per_object(example: Path, berth: RunBerth, examples: dict[str, Rendered]) -> None:
    result = berth("explain", str(example))
    assert result.code == 0, result.stderr
    objects = examples[example.stem].objects
    lines = result.stdout.splitlines()
    assert len(lines) == len(objects)
    for line, obj in zip(lines, objects, strict=True):
        assert line.startswith(f"{obj['kind']}/{obj['metadata']['name']} ")
        assert len(line.split(None, 1)[1]) > 20  # a reason in words, not just the name


def test_explain_json(berth: RunBerth, examples: dict[str, Rendered]) -> None:
    result = berth("explain", str(EXAMPLES[0]), "-o", "json")
    assert result.code == 0
    items = json.loads(result.stdout)
    assert [(i["kind"], i["name"]) for i in items] == [
        (o["kind"], o["metadata"]["name"]) for o in examples[EXAMPLES[0].stem].objects
    ]
    assert all(i["why"] for i in items)


def test_explain_says_what_happens_to_claims_on_scale_down(berth: RunBerth, examples: dict[str, Rendered]) -> None:
    """horovod deletes per-pod claims on scale-down, the others keep them."""
    assert examples["horovod"].spec.spec.volume_retention.when_scaled == "Delete"
    lines = {ln.split()[0]: ln for ln in berth("explain", str(EXAMPLES[0].parent / "horovod.yaml")).stdout.splitlines()}
    assert "claims deleted on scale-down" in lines["StatefulSet/hvd-resnet"]
    lines = {ln.split()[0]: ln for ln in berth("explain", str(ISSUE_EXAMPLE)).stdout.splitlines()}
    assert "claims retained on scale-down" in lines["StatefulSet/ml-training"]


def test_explain_of_a_bad_spec_is_located(berth: RunBerth, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE.read_text().replace("replicas: 3", "replicas: -1"))
    result = berth("explain", str(bad))
    assert result.code == 2
    assert result.stderr.startswith(f"{bad}:6:13: spec.replicas: ")


def test_schema_is_json_schema_that_accepts_the_examples(berth: RunBerth) -> None:
    result = berth("schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in [*EXAMPLES, ISSUE_EXAMPLE]:
        doc = yaml.safe_load(path.read_text())
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], path.name


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["spec"].update(replicaz=3), ""),
        (lambda d: d["spec"].update(replicas="3"), "spec.replicas"),
        (lambda d: d["spec"]["volumes"]["model-storage"].update(mountPath=5), "spec.volumes.model-storage.mountPath"),
        (lambda d: d.update(kind="Deployment"), "kind"),
        (lambda d: d["spec"].update(framework="mxnet"), "spec.framework"),
    ],
    ids=["unknown-field", "type", "nested-type", "kind", "enum"],
)
def test_schema_rejects_what_the_loader_rejects(change: object, where: str, berth: RunBerth) -> None:
    """Editors using the schema flag the same mistakes (the checks that need several fields excepted)."""
    validator = jsonschema.Draft202012Validator(json.loads(berth("schema").stdout))
    doc = yaml.safe_load(ISSUE_EXAMPLE.read_text())
    change(doc)  # type: ignore[operator]
    errors = list(validator.iter_errors(doc))
    assert errors
    assert any(".".join(map(str, e.absolute_path)).startswith(where) for e in errors)


def test_stream_helper_matches_cli(berth: RunBerth, examples: dict[str, Rendered]) -> None:
    """The library's stream is what the CLI prints: scripts can use either."""
    assert berth("render", str(ISSUE_EXAMPLE)).stdout == to_stream(examples[ISSUE_EXAMPLE.stem].objects)


def test_explain_states_the_binding_mode_the_class_has(berth: RunBerth, tmp_path: Path) -> None:
    spec = tmp_path / "immediate.yaml"
    spec.write_text(
        ISSUE_EXAMPLE.read_text().replace(
            "type: io2, iopsPerGB: 64,", "type: io2, iopsPerGB: 64, volumeBindingMode: Immediate,"
        )
    )
    lines = {ln.split()[0]: ln for ln in berth("explain", str(spec)).stdout.splitlines()}
    nvme = lines["StorageClass/ml-nvme"]
    assert "(Immediate)" in nvme and "WaitForFirstConsumer" not in nvme
    assert "(WaitForFirstConsumer)" in lines["StorageClass/fast-ssd"]


def test_init_to_stdout(berth: RunBerth) -> None:
    result = berth("init", "-", "--framework", "jax", "--name", "demo")
    assert result.code == 0, result.stderr
    spec = parse_spec(result.stdout)
    assert (spec.name, spec.spec.framework.value) == ("demo", "jax")


def test_spec_annotations_reach_every_object_so_lint_suppressions_can_live_in_the_spec(
    berth: RunBerth, tmp_path: Path
) -> None:
    spec = ISSUE_EXAMPLE.read_text().replace(
        "metadata: {name: ml-training, namespace: ml}",
        'metadata: {name: ml-training, namespace: ml, annotations: {"berth.dev/ignore": '
        '"image-latest-tag: the guide pins nothing; tracked in TICKET-1"}}',
    )
    path = tmp_path / "berth.yaml"
    path.write_text(spec)
    # All but the Namespace, which the clusters in it share (tests/render/test_render_objects.py).
    objects = [o for o in yaml.safe_load_all(berth("render", str(path)).stdout) if o["kind"] != "Namespace"]
    assert objects and all(
        o["metadata"]["annotations"]["berth.dev/ignore"].startswith("image-latest-tag:") for o in objects
    )
    before = berth("lint", str(ISSUE_EXAMPLE), "--format", "json")
    after = berth("lint", str(path), "--format", "json")
    assert "image-latest-tag" in before.stdout
    assert "image-latest-tag" not in after.stdout


# ---- what a new user met: one message and exit 2 instead of a traceback ----------------------------


def test_init_into_a_missing_directory_is_a_usage_error(berth: RunBerth, tmp_path: Path) -> None:
    result = berth("init", str(tmp_path / "newdir" / "x.yaml"))
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'newdir'} does not exist" in result.stderr and "mkdir -p" in result.stderr
    assert not (tmp_path / "newdir").exists()


def test_init_under_a_regular_file_is_a_usage_error(berth: RunBerth, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    result = berth("init", str(tmp_path / "file" / "x.yaml"))
    assert result.code == 2 and f"{tmp_path / 'file'} is not a directory" in result.stderr, result.stderr


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_init_into_a_directory_is_a_usage_error(force: list[str], berth: RunBerth, tmp_path: Path) -> None:
    result = berth("init", *force, str(tmp_path))
    assert result.code == 2, result.stderr
    assert f"{tmp_path} is a directory" in result.stderr and str(tmp_path / "berth.yaml") in result.stderr


@pytest.mark.parametrize(
    ("name", "rule", "suggestion"),
    [
        ("Bad_Name", "DNS-1123 label", "bad-name"),
        ("x" * 60, "longer than 52 characters", "x" * 52),
        ("-run-", "DNS-1123 label", "run"),
    ],
    ids=["underscore-capitals", "too-long", "dashes"],
)
def test_init_refuses_a_name_that_would_not_render(
    name: str, rule: str, suggestion: str, berth: RunBerth, tmp_path: Path
) -> None:
    path = tmp_path / "berth.yaml"
    result = berth("init", str(path), "--name", name)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(f"error: --name {name!r}: ") and rule in result.stderr
    assert f"hint: e.g. --name {suggestion}\n" in result.stderr
    assert not path.exists()
    assert berth("init", str(path), "--name", suggestion).code == 0
    assert berth("render", str(path)).code == 0


def test_render_out_dir_under_a_regular_file_is_a_usage_error(berth: RunBerth, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = berth("render", str(EXAMPLES[0]), "--out-dir", str(tmp_path / "file" / "sub"))
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"is inside {tmp_path / 'file'}, which exists and is not a directory" in result.stderr
    assert (tmp_path / "file").read_text() == "x"


def test_render_out_dir_creates_missing_parents(berth: RunBerth, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    assert berth("render", str(EXAMPLES[0]), "--out-dir", str(out)).code == 0
    assert (out / "kustomization.yaml").exists()


def test_render_minus_o_points_to_out_dir(berth: RunBerth, tmp_path: Path) -> None:
    """-o is the output format in every command; render's directory is --out-dir, and the error says so."""
    result = berth("render", str(EXAMPLES[0]), "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert f"--out-dir {tmp_path / 'out'}" in result.stderr
    assert not (tmp_path / "out").exists()
