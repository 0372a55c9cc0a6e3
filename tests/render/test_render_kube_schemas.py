"""Every rendered object of every example is valid for the API server, not just well-typed YAML."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from .conftest import Rendered
from .render_helpers import CRD_SCHEMAS, KUBE_VERSION, SPECS, kube_validator, metadata_problems

NAMES = [p.stem for p in SPECS]


def _problems(obj: dict[str, Any]) -> list[str]:
    kind = obj["kind"]
    out = [f"{kind}/{obj['metadata']['name']}: {p}" for p in metadata_problems(obj)]
    if kind in CRD_SCHEMAS:
        validator = jsonschema.Draft202012Validator(CRD_SCHEMAS[kind])
        out += [f"{kind}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
        return out
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        out.append(f"{kind}: {'.'.join(map(str, err.path))}: {err.message}")
    return out


def test_pinned_kubernetes_version_is_the_newest_schema_set() -> None:
    assert kubernetes_validate.latest_version() == KUBE_VERSION


@pytest.mark.parametrize("name", NAMES)
def test_every_object_is_valid_in_strict_mode(name: str, examples: dict[str, Rendered]) -> None:
    """Built-in kinds against the official schemas (unknown fields rejected); CRDs against theirs."""
    rendered = examples[name]
    assert rendered.objects
    problems = [p for obj in rendered.objects for p in _problems(obj)]
    assert problems == []


def test_examples_render_every_crd_kind_berth_knows(examples: dict[str, Rendered]) -> None:
    """So the structural CRD checks above are exercised, each at least once."""
    kinds = {o["kind"] for r in examples.values() for o in r.objects}
    assert kinds >= set(CRD_SCHEMAS)
    assert kinds >= {
        "Namespace",
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ServiceAccount",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
    }


def _mutated(examples: dict[str, Rendered], kind: str, change: Any) -> dict[str, Any]:
    obj = copy.deepcopy(next(o for r in examples.values() for o in r.objects if o["kind"] == kind))
    change(obj)
    return obj


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        ("StatefulSet", lambda o: o["spec"].update(podManagmentPolicy="Parallel"), "podManagmentPolicy"),
        (
            "StatefulSet",
            lambda o: o["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": "x"}]),
            "not of type 'integer'",
        ),
        ("Service", lambda o: o["metadata"].update(name="2222-svc"), "DNS-1035"),
        (
            "PersistentVolumeClaim",
            lambda o: o["spec"]["resources"]["requests"].update(storage="100GB"),
            "not a quantity",
        ),
        ("StorageClass", lambda o: o["metadata"]["labels"].update(team="ml team"), "label value"),
        ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update(fro="10m"), "fro"),
        ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "10 min"}), "does not match"),
        ("Schedule", lambda o: o["spec"]["template"].update(ttl="30d"), "does not match"),
        ("VolumeSnapshotClass", lambda o: o.update(deletionPolicy="Keep"), "is not one of"),
        ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(prot="metrics"), "prot"),
    ],
    ids=[
        "sts-unknown-field",
        "sts-wrong-type",
        "service-name",
        "quantity",
        "label-value",
        "crd-unknown-field",
        "crd-duration",
        "velero-ttl",
        "vsc-enum",
        "servicemonitor-field",
    ],
)
def test_the_checks_reject_a_broken_object(
    kind: str, change: Any, expected: str, examples: dict[str, Rendered]
) -> None:
    """Negative controls: each check above can fail, on a copy of a real rendered object."""
    problems = _problems(_mutated(examples, kind, change))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("name", NAMES)
def test_identities_are_unique(name: str, examples: dict[str, Rendered]) -> None:
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in examples[name].objects]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", NAMES)
def test_apply_order_puts_dependencies_first(name: str, examples: dict[str, Rendered]) -> None:
    """kubectl apply of the stream in order never references something not yet created."""
    objs = examples[name].objects
    kinds = [o["kind"] for o in objs]

    def first(kind: str) -> int:
        return kinds.index(kind) if kind in kinds else len(kinds)

    def last(kind: str) -> int:
        return max((i for i, k in enumerate(kinds) if k == kind), default=-1)

    if "Namespace" in kinds:
        assert kinds[0] == "Namespace"
        assert all("namespace" not in o["metadata"] for o in objs[:1])
    assert last("StorageClass") < first("PersistentVolume") <= len(kinds)
    assert last("StorageClass") < first("PersistentVolumeClaim")
    assert last("PersistentVolume") < first("PersistentVolumeClaim")
    sts = first("StatefulSet")
    assert max(last("ServiceAccount"), last("Service"), last("PersistentVolumeClaim")) < sts
    assert sts < first("PodDisruptionBudget")


def test_cached_validator_agrees_with_kubernetes_validate(examples: dict[str, Rendered]) -> None:
    """The property tests' fast validator gives the package's verdict, on good and broken objects."""
    good = [o for o in examples["pytorch"].objects if o["kind"] not in CRD_SCHEMAS]
    broken = [
        _mutated(examples, "StatefulSet", lambda o: o["spec"].update(podManagmentPolicy="Parallel")),
        _mutated(examples, "Service", lambda o: o["spec"].update(clusterIP=5)),
        _mutated(examples, "PersistentVolume", lambda o: o["spec"].update(capacity=[])),
    ]
    for obj in good + broken:
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
            official = True
        except kubernetes_validate.ValidationError:
            official = False
        assert kube_validator(obj["kind"], obj["apiVersion"]).is_valid(obj) is official, obj["kind"]
    assert not any(kube_validator(o["kind"], o["apiVersion"]).is_valid(o) for o in broken)
