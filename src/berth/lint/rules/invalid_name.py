"""An object name, label key or label value the API server rejects.

## What it does
Validates `metadata.name` as the API server does — a DNS-1123 subdomain for most built-in
kinds (lower-case letters, digits, `-` and `.`, at most 253 characters), a DNS-1035 label for
a Service and a DNS-1123 label for a Namespace (at most 63, no `.`) — and every label of the
object and of its pod template: keys are qualified names (`[prefix/]name`), values at most
63 characters of letters, digits, `-`, `_` and `.`, starting and ending alphanumeric. Names
such as `PVC_NAME` or `${SERVICENAME}` are placeholders nobody substituted.

## Why is this bad?
`kubectl apply` fails with "Invalid value: … a lowercase RFC 1123 subdomain must consist
of …": the object (and whatever depends on it) is never created.

## Example
```yaml
apiVersion: v1
kind: Service
metadata:
  name: ${SERVICENAME}
  labels: {app: "${APP}"}
```

Use instead:
```yaml
apiVersion: v1
kind: Service
metadata:
  name: trainer
  labels: {app: trainer}
```

## Fix
Substitute the placeholder (envsubst, kustomize, Helm) before linting, or write a valid name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Path, Severity
from berth.lint.rules import ANY_KIND, Hit, Rule
from berth.lint.rules._pod import as_dict, pod_spec

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_]|\{\{|^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")

# Built-in API groups: their kinds' names follow the rules above. Custom resources may differ.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "networking.k8s.io",
        "storage.k8s.io",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "coordination.k8s.io",
        "extensions",
    }
)
# Kinds whose names are path segments, not DNS names (RBAC allows ':' in them).
PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
DNS1035_KINDS = frozenset({"Service"})
DNS1123_LABEL_KINDS = frozenset({"Namespace"})


def _hint(value: str) -> str:
    return " (an unsubstituted placeholder?)" if PLACEHOLDER.search(value) else ""


def name_problem(kind: str, name: str) -> str | None:
    """Why the API server rejects ``name`` for ``kind``; None when it accepts it."""
    if kind in PATH_SEGMENT_KINDS:
        return None if name not in (".", "..") and "/" not in name and "%" not in name else "not a path segment"
    if kind in DNS1035_KINDS:
        ok, what, limit = DNS1035_LABEL.match(name), "a DNS-1035 label (lower-case, starts with a letter)", 63
    elif kind in DNS1123_LABEL_KINDS:
        ok, what, limit = DNS1123_LABEL.match(name), "a DNS-1123 label (lower-case letters, digits, '-')", 63
    else:
        what = "a DNS-1123 subdomain (lower-case letters, digits, '-', '.')"
        ok, limit = DNS1123_SUBDOMAIN.match(name), 253
    if not ok:
        return f"is not {what}"
    return f"is longer than {limit} characters" if len(name) > limit else None


# Labels repeat across a repository's objects (app.kubernetes.io/name, its value): each is judged once.
@functools.lru_cache(maxsize=4096)
def label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return "has a prefix that is not a DNS-1123 subdomain"
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        return "is not a qualified name (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)"
    return None


@functools.lru_cache(maxsize=4096)
def label_value_problem(value: str) -> str | None:
    if value == "":
        return None
    if len(value) > 63 or not QUALIFIED_NAME.match(value):
        return "is not a valid label value (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)"
    return None


def _labels(labels: object, base: Path) -> Iterator[Hit]:
    for key, value in as_dict(labels).items():
        problem = label_key_problem(str(key))
        if problem:
            yield Hit((*base, str(key)), f"label key {str(key)!r} {problem}{_hint(str(key))}", "use a valid key")
        if isinstance(value, str):
            problem = label_value_problem(value)
            if problem:
                msg = f"label {str(key)!r} value {value!r} {problem}{_hint(value)}"
                yield Hit((*base, str(key)), msg, "use a valid label value")


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    group = doc.api_version.rpartition("/")[0]
    name = doc.metadata.get("name")
    if isinstance(name, str) and group in BUILTIN_GROUPS:
        problem = name_problem(doc.kind, name)
        if problem:
            yield Hit(("metadata", "name"), f"name {name!r} {problem}{_hint(name)}", "use a valid name")
    yield from _labels(doc.metadata.get("labels"), ("metadata", "labels"))
    found = pod_spec(doc)
    if found is not None and found[1][-1] == "spec" and len(found[1]) > 1:
        meta_path = (*found[1][:-1], "metadata")
        template: object = doc.obj
        for part in meta_path:
            if isinstance(part, int):
                template = template[part] if isinstance(template, list) and part < len(template) else None
            else:
                template = as_dict(template).get(part)
        yield from _labels(as_dict(template).get("labels"), (*meta_path, "labels"))


RULE = Rule(
    id="invalid-name",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({ANY_KIND}),
    equivalents={"kubeconform": "(not checked)", "kubectl": "metadata.name: Invalid value"},
)
