"""The TrainingCluster CustomResourceDefinition, generated from the spec model.

``berth schema`` prints the model's JSON Schema; this module converts the same schema into a
*structural* OpenAPI v3 schema (no ``$ref``, every node typed, no typed ``anyOf``), so the API
server validates a CR with the model's own field rules. Free-form Kubernetes objects the model
takes as mappings (pod template, affinity, probes, containers …) keep their fields through
``x-kubernetes-preserve-unknown-fields``; the model's quantities and int-or-percent values become
``x-kubernetes-int-or-string``. Cross-field rules that CEL can express are ``x-kubernetes-validations``
with the spec checker's own messages; the rest (provider limits, unknown classes on the cluster)
are the controller's, reported as a ``Degraded`` condition naming the field.

The committed copy (``crd.yaml`` next to this file) is compared with a fresh generation by
tests/test_operator_crd.py: a model change without ``berth operator crd > …/crd.yaml`` fails it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from berth.contract import API_GROUP, KIND

PLURAL = "trainingclusters"
SINGULAR = "trainingcluster"
SHORT_NAMES = ["tc"]
VERSION = "v1alpha1"
CRD_NAME = f"{PLURAL}.{API_GROUP}"
COMMITTED = Path(__file__).with_name("crd.yaml")

# CEL rules per model (the $defs name, "" for the whole object): (rule, message). Messages are the
# spec checker's (spec/validate.py, spec/pod_checks.py), so CLI and API server say the same thing.
CEL: dict[str, list[tuple[str, str]]] = {
    "": [
        (
            "size(self.metadata.name) <= 52",
            "metadata.name must be at most 52 characters: pod names add -<ordinal> and the StatefulSet's "
            "controller-revision-hash label adds 11 more, within the 63-character label limit",
        ),
    ],
    "ClusterSpec": [
        (
            "!has(self.volumes) || self.volumes.all(v, has(self.storageClasses) && "
            "self.volumes[v].storageClass in self.storageClasses)",
            "unknown storage class: every volumes.*.storageClass must be declared under spec.storageClasses "
            "(use `<name>: {existing: true}` for a class the cluster already has)",
        ),
    ],
    "Disruption": [
        (
            "!(has(self.minAvailable) && has(self.maxUnavailable))",
            "set minAvailable or maxUnavailable, not both",
        ),
    ],
    "Queue": [("has(self.kueue) != has(self.volcano)", "set exactly one of kueue, volcano")],
    "PodVolume": [
        (
            "(has(self.secret) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.projected) ? 1 : 0)"
            " + (has(self.csi) ? 1 : 0) == 1",
            "set exactly one of secret, configMap, projected, csi",
        ),
    ],
    "Monitoring": [
        (
            "!has(self.prometheus) || self.prometheus || "
            "!((has(self.serviceMonitor) && self.serviceMonitor) || (has(self.podMonitor) && self.podMonitor))",
            "serviceMonitor and podMonitor need the metrics port of prometheus: true",
        ),
    ],
}

# Bounds the model leaves open but CEL's cost estimate needs (a map iterated by a rule).
_MAX_PROPERTIES = {
    ("ClusterSpec", "volumes"): 64,
    ("ClusterSpec", "storageClasses"): 64,
    ("ClusterSpec", "podVolumes"): 64,
}

_KEEP = ("description", "pattern", "minLength", "maxLength", "minimum", "maximum", "enum", "format")


class _Converter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def node(self, schema: dict[str, Any], owner: str = "", field: str = "") -> dict[str, Any]:
        """One JSON Schema node → a structural OpenAPI node."""
        description = schema.get("description")
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            out = self.model(name) if "properties" in self.defs[name] else self.node(self.defs[name], name)
            if description:
                out = {**out, "description": description}
            return out
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
            types = {b.get("type") for b in branches}
            if len(branches) == 1:
                out = self.node(branches[0], owner, field)
            elif types <= {"string", "integer", "number"}:
                # Quantities (100Gi, 2, 0.5) and int-or-percent: Kubernetes' own int-or-string.
                out = {"x-kubernetes-int-or-string": True}
            else:
                # A string or an object (env: value or {valueFrom}): only the controller can tell them apart.
                out = {"x-kubernetes-preserve-unknown-fields": True}
            if description:
                out["description"] = description
            return out
        kind = schema.get("type")
        out = {k: schema[k] for k in _KEEP if k in schema}
        if "const" in schema:
            out["enum"] = [schema["const"]]
        if kind == "object":
            out["type"] = "object"
            extra = schema.get("additionalProperties")
            if "properties" in schema:
                return {**self.properties(schema, owner), **({"description": description} if description else {})}
            if extra is True or extra is None:
                out["x-kubernetes-preserve-unknown-fields"] = True  # a Kubernetes object the model takes whole
            elif isinstance(extra, dict):
                out["additionalProperties"] = self.node(extra, owner)
            if (owner, field) in _MAX_PROPERTIES:
                out["maxProperties"] = _MAX_PROPERTIES[(owner, field)]
        elif kind == "array":
            out["type"] = "array"
            out["items"] = self.node(schema.get("items", {}), owner)
        elif kind in ("string", "integer", "number", "boolean"):
            out["type"] = kind
        elif "enum" in schema:
            out["type"] = "string"
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    def properties(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": {}}
        for field, sub in schema["properties"].items():
            out["properties"][field] = self.node(sub, name, field)
        required = [f for f in schema.get("required", []) if f in out["properties"]]
        if required:
            out["required"] = required
        rules = CEL.get(name)
        if rules:
            out["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
        return out

    def model(self, name: str) -> dict[str, Any]:
        return self.properties(self.defs[name], name) | (
            {"description": self.defs[name]["description"]} if "description" in self.defs[name] else {}
        )


_CONDITION = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string", "description": "Ready, Progressing, Degraded, Succeeded or Failed"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "observedGeneration": {"type": "integer"},
    },
}

_RANK = {
    "type": "object",
    "required": ["rank"],
    "properties": {
        "rank": {"type": "integer"},
        "pod": {"type": "string"},
        "phase": {"type": "string", "description": "the pod's phase, or the supervisor's run phase of this rank"},
        "ready": {"type": "boolean"},
        "restarts": {"type": "integer"},
        "node": {"type": "string"},
        "step": {"type": "integer"},
        "exitCode": {"type": "integer"},
    },
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Written by the berth operator only.",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "phase": {"type": "string", "description": "Pending, Running, Ready, Succeeded, Failed or Degraded"},
        "replicas": {"type": "integer", "description": "pods the StatefulSet has (the scale subresource reads it)"},
        "readyReplicas": {"type": "integer"},
        "ready": {"type": "string", "description": "ready/desired, for `kubectl get`"},
        "selector": {"type": "string", "description": "label selector of the pods (scale subresource)"},
        "conditions": {
            "type": "array",
            "items": _CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "ranks": {"type": "array", "items": _RANK},
        "corrected": {
            "type": "array",
            "items": {"type": "string"},
            "description": "owned objects the last reconcile found changed by hand and set back (kind/name: fields)",
        },
    },
}


def openapi_schema() -> dict[str, Any]:
    """The structural schema of a whole TrainingCluster object."""
    from berth.spec.model import TrainingCluster

    doc = TrainingCluster.model_json_schema(by_alias=True, mode="validation")
    conv = _Converter(doc.get("$defs", {}))
    spec = conv.node(doc["properties"]["spec"], "TrainingCluster", "spec")
    return {
        "type": "object",
        "description": doc.get("description", ""),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": STATUS_SCHEMA,
        },
        "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in CEL[""]],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "berth"}},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["berth"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML committed in ``crd.yaml``."""
    import yaml

    header = "# Generated from berth.spec.model by `berth operator crd`; do not edit (tests/test_operator_crd.py).\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)
