"""Shared by the render tests: the examples, and checks the Kubernetes schemas cannot make.

``kubernetes-validate`` carries the built-in kinds only. For the custom resources berth
renders, ``CRD_SCHEMAS`` holds structural schemas written from each project's CRD
(field names and types of the parts berth uses, unknown fields rejected):
prometheus-operator ``monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml``,
velero ``velero.io_schedules.yaml``, external-snapshotter
``snapshot.storage.k8s.io_volumesnapshotclasses.yaml``.
The API server's own name and label rules (which its OpenAPI schema does not carry) are
re-implemented in ``metadata_problems`` from the apimachinery validation code.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
ISSUE_EXAMPLE = REPO / "tests" / "spec" / "data" / "issue2-example.yaml"
SPECS = [*EXAMPLES, ISSUE_EXAMPLE]  # what the schema tests render
GOLDEN = Path(__file__).resolve().parent / "golden"
KUBE_VERSION = "1.37.0"  # newest schema set in kubernetes-validate; the test checks it is the newest

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# apimachinery resource.Quantity: sign, digits, then a binary/decimal SI suffix or an exponent.
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
# Prometheus-operator Duration (monitoring.coreos.com CRDs).
PROM_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
# Go time.ParseDuration, as Velero's metav1.Duration fields take.
GO_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"

# Kinds whose names must be DNS-1123 labels (or DNS-1035 for Services), not just subdomains.
LABEL_NAMED = {"Namespace", "StatefulSet"}


@functools.cache
def kube_validator(kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    """The strict validator ``kubernetes_validate.validate`` builds, built once per kind.

    Same schema files, same registry; the package rebuilds it (parsing a 2 MB definitions
    file) on every call, too slow for property tests. test_render_kube_schemas checks both agree.
    """
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{KUBE_VERSION}-local-strict"
    schema = schema_contents(f"{folder}/{kind.lower()}-{group}.json", KUBE_VERSION)
    definitions = schema_contents(f"{folder}/_definitions.json", KUBE_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _qualified_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


def metadata_problems(obj: dict[str, Any]) -> list[str]:
    """What the API server would reject in names, labels and quantities (its schema only has types)."""
    out: list[str] = []
    md = obj["metadata"]
    name = md["name"]
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        out.append(f"name {name!r} is not a DNS-1123 subdomain")
    if obj["kind"] == "Service" and (len(name) > 63 or not DNS1035_LABEL.match(name)):
        out.append(f"Service name {name!r} is not a DNS-1035 label")
    if obj["kind"] in LABEL_NAMED and (len(name) > 63 or not DNS1123_LABEL.match(name)):
        out.append(f"{obj['kind']} name {name!r} is not a DNS-1123 label")
    if "namespace" in md and not DNS1123_LABEL.match(md["namespace"]):
        out.append(f"namespace {md['namespace']!r} is not a DNS-1123 label")
    for where, labels in _label_sets(obj):
        for key, value in labels.items():
            if not _qualified_key(key):
                out.append(f"{where}: label key {key!r} is invalid")
            if value and (len(value) > 63 or not QUALIFIED_NAME.match(value)):
                out.append(f"{where}: label value {value!r} is invalid")
    for key in md.get("annotations", {}):
        if not _qualified_key(key):
            out.append(f"annotation key {key!r} is invalid")
    for where, quantity in _quantities(obj):
        if not QUANTITY.match(quantity):
            out.append(f"{where}: {quantity!r} is not a quantity")
    return out


def _label_sets(obj: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    sets = [("metadata.labels", obj["metadata"].get("labels", {}))]
    spec = obj.get("spec", {})
    if isinstance(spec.get("selector"), dict):
        sets.append(("spec.selector", spec["selector"].get("matchLabels", spec["selector"])))
    template = spec.get("template", {})
    if "metadata" in template:
        sets.append(("spec.template.metadata.labels", template["metadata"].get("labels", {})))
        sets.append(("nodeSelector", template.get("spec", {}).get("nodeSelector", {})))
    for tpl in spec.get("volumeClaimTemplates", []):
        sets.append(("volumeClaimTemplates.labels", tpl["metadata"].get("labels", {})))
    return sets


def _quantities(obj: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    spec = obj.get("spec", {})
    if obj["kind"] == "PersistentVolumeClaim":
        out += [("storage", spec["resources"]["requests"]["storage"])]
    if obj["kind"] == "PersistentVolume":
        out += [("capacity", spec["capacity"]["storage"])]
    if obj["kind"] == "StatefulSet":
        for c in spec["template"]["spec"]["containers"]:
            for section in ("requests", "limits"):
                out += [(f"{section}.{k}", v) for k, v in c.get("resources", {}).get(section, {}).items()]
        for tpl in spec.get("volumeClaimTemplates", []):
            out += [("volumeClaimTemplate", tpl["spec"]["resources"]["requests"]["storage"])]
    return out


# --- structural schemas of the custom resources -------------------------------------------------

_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _STR_MAP, "annotations": _STR_MAP},
    "additionalProperties": False,
}
_LABEL_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}},
    "additionalProperties": False,
}
_NAMESPACE_SELECTOR = {
    "type": "object",
    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _STR}},
    "additionalProperties": False,
}
_ENDPOINT = {
    "type": "object",
    "properties": {
        "port": _STR,
        "portNumber": {"type": "integer"},
        "path": _STR,
        "scheme": {"enum": ["http", "https"]},
        "interval": {"type": "string", "pattern": PROM_DURATION},
        "scrapeTimeout": {"type": "string", "pattern": PROM_DURATION},
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array"},
        "metricRelabelings": {"type": "array"},
    },
    "additionalProperties": False,
}


def _crd(api_version: str, kind: str, body: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", *required],
        "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA, **body},
        "additionalProperties": False,
    }


def _spec(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"spec": {"type": "object", "required": required, "properties": properties, "additionalProperties": False}}


CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        _spec(
            {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "endpoints": {"type": "array", "items": _ENDPOINT},
                "jobLabel": _STR,
            },
            ["selector"],
        ),
        ["spec"],
    ),
    "PodMonitor": _crd(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        _spec(
            {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "items": _ENDPOINT},
                "jobLabel": _STR,
            },
            ["selector"],
        ),
        ["spec"],
    ),
    "PrometheusRule": _crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        _spec(
            {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": PROM_DURATION},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": _STR,
                                        "record": _STR,
                                        "expr": {"type": ["string", "integer"]},
                                        "for": {"type": "string", "pattern": PROM_DURATION},
                                        "keep_firing_for": {"type": "string", "pattern": PROM_DURATION},
                                        "labels": _STR_MAP,
                                        "annotations": _STR_MAP,
                                    },
                                },
                            },
                        },
                    },
                },
            },
            [],
        ),
        ["spec"],
    ),
    "VolumeSnapshotClass": _crd(
        "snapshot.storage.k8s.io/v1",
        "VolumeSnapshotClass",
        {
            "driver": {"type": "string", "minLength": 1},
            "deletionPolicy": {"enum": ["Delete", "Retain"]},
            "parameters": _STR_MAP,
        },
        ["driver", "deletionPolicy"],
    ),
    "Schedule": _crd(
        "velero.io/v1",
        "Schedule",
        _spec(
            {
                "schedule": {"type": "string", "minLength": 1},
                "useOwnerReferencesInBackup": {"type": "boolean"},
                "paused": {"type": "boolean"},
                "skipImmediately": {"type": "boolean"},
                "template": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "includedNamespaces": {"type": "array", "items": _STR},
                        "excludedNamespaces": {"type": "array", "items": _STR},
                        "includedResources": {"type": "array", "items": _STR},
                        "labelSelector": _LABEL_SELECTOR,
                        "snapshotVolumes": {"type": ["boolean", "null"]},
                        "ttl": {"type": "string", "pattern": GO_DURATION},
                        "storageLocation": _STR,
                        "volumeSnapshotLocations": {"type": "array", "items": _STR},
                        "csiSnapshotTimeout": {"type": "string", "pattern": GO_DURATION},
                        "snapshotMoveData": {"type": "boolean"},
                        "defaultVolumesToFsBackup": {"type": "boolean"},
                    },
                },
            },
            ["schedule", "template"],
        ),
        ["spec"],
    ),
}
