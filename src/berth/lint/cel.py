"""CRDs' CEL validation rules (``x-kubernetes-validations``), evaluated offline as the API server would.

A CRD can carry rules the OpenAPI schema cannot say ("StartupPolicy and DependsOn APIs are mutually
exclusive"); the API server rejects an object that breaks one. The rules of the bundled CRDs
(copied from upstream, ``tools/check_bundled_crds.py`` checks they match) and of ``--schema-dir``
CRDs are evaluated here with cel-python, ``self`` bound to the node the rule sits on.

Not evaluated, and counted (``CelChecker.skipped``):

- transition rules (they use ``oldSelf``): they judge an update against the stored object;
- rules calling a Kubernetes CEL library function cel-python lacks (``isSorted``, ``quantity``,
  ``url``, ``ip``, ``format.*``, the string extensions ...): ``UNSUPPORTED`` names the calls;
- rules whose evaluation fails (a field the API server would have defaulted first, a type the
  schema check already reports): no finding, as the real outcome cannot be known offline.

cel-python is imported only when an object with rules is linted (~0.1 s of CPU), and its Lark
parser is loaded from a cache (``parser_cache``) rather than built from the grammar (0.15 s of
CPU, paid again by every pool worker that meets a rule).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from berth.lint.model import Obj, Path

# cel-python's macros: parsed as calls, evaluated by the evaluator itself.
_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
_FIELD = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*(\d+)\s*\]")


@dataclass(frozen=True)
class CelRule:
    """One rule of a CRD: where it sits in the schema, what it says, and where a breach points."""

    where: tuple[str, ...]  # property names; "[]" an array's items, "{}" a map's values
    rule: str
    message: str
    message_expression: str = ""
    field_path: Path = ()  # the rule's fieldPath, relative to the node


@dataclass(frozen=True)
class CelBreach:
    """A rule the object breaks, at a key path of the object."""

    path: Path
    message: str


def crd_rules(schema: Any, where: tuple[str, ...] = ()) -> list[CelRule]:
    """Every ``x-kubernetes-validations`` rule of an openAPIV3Schema, outermost first."""
    if not isinstance(schema, dict):
        return []
    out = []
    for entry in schema.get("x-kubernetes-validations") or ():
        if isinstance(entry, dict) and isinstance(entry.get("rule"), str):
            rule = entry["rule"]
            out.append(
                CelRule(
                    where,
                    rule,
                    str(entry.get("message") or f"failed rule: {rule}"),
                    str(entry.get("messageExpression") or ""),
                    _field_path(str(entry.get("fieldPath") or "")),
                )
            )
    for name, sub in (schema.get("properties") or {}).items():
        out.extend(crd_rules(sub, (*where, name)))
    if isinstance(schema.get("items"), dict):
        out.extend(crd_rules(schema["items"], (*where, "[]")))
    if isinstance(schema.get("additionalProperties"), dict):
        out.extend(crd_rules(schema["additionalProperties"], (*where, "{}")))
    return out


def _field_path(text: str) -> Path:
    """``.spec.foo['a.b'][0]`` as key path parts; what does not parse points at the node itself."""
    parts: list[str | int] = []
    pos = 0
    for match in _FIELD.finditer(text):
        if match.start() != pos:
            return ()
        parts.append(match[1] or match[2] if match[3] is None else int(match[3]))
        pos = match.end()
    return tuple(parts) if pos == len(text) else ()


def _nodes(value: Any, where: tuple[str, ...], path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """The object's nodes a rule sits on (none where a field is absent), with their paths."""
    if not where:
        yield path, value
        return
    step, rest = where[0], where[1:]
    if step == "[]":
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _nodes(item, rest, (*path, i))
    elif step == "{}":
        if isinstance(value, dict):
            for key, item in value.items():
                yield from _nodes(item, rest, (*path, str(key)))
    elif isinstance(value, dict) and value.get(step) is not None:
        yield from _nodes(value[step], rest, (*path, step))


def parser_cache(lark_version: str) -> str:
    """The file Lark keeps cel-python's analysed grammar in: ``$XDG_CACHE_HOME/berth/cel`` (``~/.cache``).

    Named by the Lark and Python versions whose pickle it holds; Lark also checks the hash of
    the grammar, its options and its version stored inside, and rebuilds (and rewrites) a stale
    or unreadable file.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    py = "".join(map(str, sys.version_info[:2]))
    return os.path.join(base, "berth", "cel", f"lark-{lark_version}-py{py}.cache")


def _install_parser() -> None:
    """Give cel-python its Lark parser from the cache, building and caching it the first time.

    The same grammar and options as ``celpy.celparser.CELParser`` uses; a first build is
    written to a private temporary name and renamed, so concurrent workers never read a
    half-written cache. Without a writable cache the parser is just built, as before.
    """
    import celpy
    import lark
    from celpy.celparser import CELParser

    if CELParser.CEL_PARSER is not None:
        return
    path = parser_cache(lark.__version__)
    fresh = not os.path.isfile(path)
    target = f"{path}.{os.getpid()}.tmp" if fresh else path
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        target = ""
    with open(os.path.join(os.path.dirname(celpy.__file__), "cel.lark"), encoding="utf-8") as fh:
        grammar = fh.read()
    CELParser.CEL_PARSER = lark.Lark(
        grammar,
        parser="lalr",
        start="expr",
        debug=True,
        g_regex_flags=re.M,
        lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
        tree_class=celpy.InterpretedRunner.tree_node_class,
        cache=target or False,
    )
    if fresh and target:
        with contextlib.suppress(OSError):  # Lark could not write it: the parser is built all the same
            os.replace(target, path)


class CelChecker:
    """Compiled rules of one process; counts what it could not evaluate, by reason."""

    def __init__(self) -> None:
        self._env: Any = None
        self._programs: dict[str, Any] = {}  # rule -> program, or a str: why it is skipped
        self.skipped: Counter[str] = Counter()

    def _program(self, rule: str) -> Any:
        if rule not in self._programs:
            self._programs[rule] = self._compile(rule)
        return self._programs[rule]

    def _compile(self, rule: str) -> Any:
        import celpy  # lazily: only objects whose CRD has rules need it
        from celpy.celparser import CELParseError
        from celpy.evaluation import base_functions

        if self._env is None:
            _install_parser()
            self._env = celpy.Environment()
        if re.search(r"\boldSelf\b", rule):
            return "transition rule (oldSelf)"
        try:
            tree = self._env.compile(rule)
        except CELParseError:
            return "does not parse"
        for node in tree.iter_subtrees():
            if node.data in ("member_dot_arg", "ident_arg"):
                names = [str(c) for c in node.children if getattr(c, "type", "") == "IDENT"]
                missing = [n for n in names if n not in base_functions and n not in _MACROS]
                if missing:
                    return f"calls {missing[0]}(), which cel-python lacks"
        return self._env.program(tree)

    def check(self, obj: Obj, rules: tuple[CelRule, ...]) -> list[CelBreach]:
        """The rules ``obj`` breaks; rules that cannot be evaluated are counted in ``skipped``."""
        out = []
        for rule in rules:
            for path, node in _nodes(obj, rule.where):
                program = self._program(rule.rule)
                if isinstance(program, str):
                    self.skipped[program] += 1
                    continue
                verdict = self._evaluate(program, node)
                if verdict is None:
                    self.skipped["evaluation error"] += 1
                elif not verdict:
                    out.append(CelBreach((*path, *rule.field_path), self._message(rule, node)))
        return out

    def _evaluate(self, program: Any, node: Any) -> bool | None:
        from celpy.celtypes import BoolType

        result = _run(program, node)
        return bool(result) if isinstance(result, BoolType) else None

    def _message(self, rule: CelRule, node: Any) -> str:
        message = rule.message
        if rule.message_expression:
            program = self._program(rule.message_expression)
            if not isinstance(program, str):
                text = _run(program, node)
                if isinstance(text, str) and text.strip():
                    message = str(text)
        shown = rule.rule if len(rule.rule) <= 100 else rule.rule[:97] + "..."
        return f"{message} (CRD validation rule: {shown})"


def _run(program: Any, node: Any) -> Any:
    """The program's value with ``self`` bound to ``node``; None when evaluation fails."""
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    try:
        return program.evaluate({"self": json_to_cel(node)})
    except (CELEvalError, TypeError, ValueError, KeyError):
        return None
