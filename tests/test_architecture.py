"""The folder tree is the architecture: these tests fail when the code stops matching it.

* Layering (the table in docs/architecture.md): each top-level part of ``berth`` may import only the
  parts listed for it — lower layers never import higher ones, the in-pod runtime never
  loads the spec model or a Kubernetes client. Function-level and ``TYPE_CHECKING``
  imports count too: a cycle hidden inside a function is still a cycle.
* Dependencies: every third-party package the library imports is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "berth"

DOC = ROOT / "docs" / "architecture.md"


def _layer_table() -> dict[str, set[str]]:
    """part -> parts it may import, read from the table in docs/architecture.md (the doc is the rule)."""
    table: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith("`") and cells[0] != "`part`":
            allowed = set() if cells[1] == "—" else {c.strip() for c in cells[1].split(",")}
            # The package itself (``berth.__version__``) is a leaf every part may read.
            table[cells[0].strip("`")] = allowed | {"__init__"}
        elif table and not line.strip():
            break  # the first table only
    return table


ALLOWED = _layer_table()
ALLOWED.setdefault("__init__", set())
# Type-only stub packages, imported under TYPE_CHECKING: module -> the dev extra that installs them.
STUBS = {"mypy_boto3_s3": "boto3-stubs"}
# Optional extras: module -> (extra, the only part that may import it). kopf is the operator's alone,
# so the CLI and the in-pod runtime never need it (docs/operator.md).
EXTRAS = {"kopf": ("operator", "src/berth/operator/")}


def _part(module: str) -> str:
    """``berth.kube.client`` -> ``kube``; ``berth.errors`` -> ``errors``."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else [*parts[:-1], "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every berth import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_of(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "berth":  # `from berth import contract` names a submodule; `__version__` is berth's own
                for alias in node.names:
                    sub = SRC / alias.name
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    yield node.lineno, f"berth.{alias.name}" if is_module else "berth"
            else:
                yield node.lineno, name


def test_the_layer_table_is_read() -> None:
    assert {"errors", "spec", "render", "lint", "kube", "runtime", "cli"} <= set(ALLOWED)
    assert ALLOWED["runtime"] == {"errors", "contract", "quantity", "rendezvous", "__init__"}


def test_every_part_is_in_the_layer_table() -> None:
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__pycache__"}
    assert parts - {"py"} <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED and docs/architecture.md"


def test_lower_layers_never_import_higher_ones() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        own = _part(_module_of(path))
        for line, target in _imports(path):
            if target != "berth" and not target.startswith("berth."):
                continue
            other = _part(target)
            if other != own and other not in ALLOWED[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target}")
    assert not bad, "layering violations (see docs/architecture.md):\n" + "\n".join(bad)


def test_layering_check_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a spec module importing render is reported."""
    probe = SRC / "spec" / "_probe_layering.py"
    probe.write_text("def f() -> None:\n    from berth.render.storage import storage_classes\n", encoding="utf-8")
    try:
        with pytest.raises(AssertionError, match=r"spec/_probe_layering.py:2: spec imports berth.render.storage"):
            test_lower_layers_never_import_higher_ones()
    finally:
        probe.unlink()


def _third_party_imports() -> dict[str, str]:
    """Top-level third-party module -> one file importing it."""
    stdlib = set(sys.stdlib_module_names)
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        for _, name in _imports(path):
            top = name.split(".")[0]
            if top and top != "berth" and top not in stdlib:
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _importers(module: str) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in SRC.rglob("*.py")
        if any(name.split(".")[0] == module for _, name in _imports(path))
    )


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_dist_name(req) for req in project["dependencies"]}
    dev = {_dist_name(req) for req in project["optional-dependencies"]["dev"]}
    providers = metadata.packages_distributions()
    missing = []
    for module, where in _third_party_imports().items():
        dists = {_dist_name(d) for d in providers.get(module, [module])}
        extra, home = EXTRAS.get(module, ("", ""))
        if extra and dists & {_dist_name(r) for r in project["optional-dependencies"].get(extra, [])}:
            others = [w for w in _importers(module) if not w.startswith(home)]
            assert not others, f"{module} is the {extra} extra's: imported outside {home}: {others}"
            continue
        if not dists & declared and STUBS.get(module) not in dev:
            missing.append(f"{module} (from {where}; distribution {sorted(dists)})")
    assert not missing, "imported but not declared in pyproject.toml [project].dependencies:\n" + "\n".join(missing)


def _dist_name(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~[; ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-").replace(".", "-")
