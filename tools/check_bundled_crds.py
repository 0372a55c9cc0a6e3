"""Check berth's bundled CRD subsets (src/berth/lint/schemas/*.yaml) against upstream CRD files.

python tools/check_bundled_crds.py UPSTREAM_CRD.yaml...   # exit 1 on a disagreement

For each (apiVersion, kind) bundled and found upstream: every modelled field must exist upstream
with the same type, and every upstream field next to modelled ones must be modelled (nodes that
reference an official Kubernetes type or are left open are not descended). Required fields and
enums that differ are listed as notes (a default or a webhook may fill a field upstream requires).
CEL rules (``x-kubernetes-validations``): a bundled rule must be upstream's, word for word, on the
same node of every given release that has the node (berth invents none); upstream rules left out
are notes (transition rules, and rules only some releases carry).
The upstream files are not shipped: fetch them from the projects' repositories at a release.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from importlib import resources
from typing import Any

import yaml


def _type(node: dict[str, Any]) -> str | None:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return node.get("type")


def _compare(mine: dict[str, Any], theirs: dict[str, Any], path: str, out: list[str], notes: list[str]) -> None:
    if "$ref" in mine or mine.get("x-kubernetes-preserve-unknown-fields"):
        return
    theirs_rules = {(r.get("rule"), r.get("message")) for r in theirs.get("x-kubernetes-validations") or []}
    for entry in mine.get("x-kubernetes-validations") or []:
        if (entry.get("rule"), entry.get("message")) not in theirs_rules:
            out.append(f"{path}: rule {entry.get('rule')!r} missing upstream")
    mine_rules = {(r.get("rule"), r.get("message")) for r in mine.get("x-kubernetes-validations") or []}
    for rule, _message in sorted(theirs_rules - mine_rules, key=str):
        notes.append(f"{path}: upstream rule {rule!r} not bundled")
    if _type(mine) != _type(theirs) and not (_type(mine) == "int-or-string" and _type(theirs) == "integer"):
        out.append(f"{path}: type {_type(mine)}, upstream {_type(theirs)}")
    if sorted(mine.get("required") or []) != sorted(theirs.get("required") or []):
        notes.append(f"{path}: required {mine.get('required')}, upstream {theirs.get('required')}")
    if "enum" in mine and sorted(map(str, mine["enum"])) != sorted(map(str, theirs.get("enum") or [])):
        notes.append(f"{path}: enum {mine['enum']}, upstream {theirs.get('enum')}")
    ours, upstream = mine.get("properties") or {}, theirs.get("properties") or {}
    for key in sorted({*ours, *upstream}):
        if key not in upstream:
            out.append(f"{path}.{key}: not upstream")
        elif key not in ours:
            if ours:
                out.append(f"{path}.{key}: upstream field not modelled")
        else:
            _compare(ours[key], upstream[key], f"{path}.{key}", out, notes)
    for part, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(mine.get(part), dict) and isinstance(theirs.get(part), dict):
            _compare(mine[part], theirs[part], path + suffix, out, notes)


def _versions(docs: Any) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in docs:
        if isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition":
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                found[key] = version["schema"]["openAPIV3Schema"].get("properties", {}).get("spec") or {}
    return found


def main(paths: list[str]) -> int:
    upstream: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for key, spec in _versions(yaml.load_all(fh, Loader=yaml.CSafeLoader)).items():
                upstream[key].append((path, spec))
    failed = 0
    for entry in sorted(resources.files("berth.lint.schemas").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        bundled = _versions(yaml.load(entry.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)["items"])
        for key, mine in bundled.items():
            sources = upstream.get(key, [])
            if not sources:
                continue
            # A bundled schema is the union of several releases: a field is "not upstream" only
            # when no given release has it; other problems count in any release.
            found = []
            for _path, theirs in sources:
                out: list[str] = []
                _compare(mine, theirs, "spec", out, notes := [])
                found.append(out)
            absent = set.intersection(*({p for p in out if p.endswith("not upstream")} for out in found))
            problems = sorted(absent | {p for out in found for p in out if not p.endswith("not upstream")})
            print(f"{key[0]} {key[1]} vs {len(sources)} upstream file(s): {len(problems)} problem(s)")
            for line in problems:
                print(f"  problem: {line}")
            for line in notes:
                print(f"  note: {line}")
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
