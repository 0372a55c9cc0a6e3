"""Run the linter over files: load, validate, apply rules, suppress, locate.

Files are spread over worker processes; each worker compiles every schema it needs once
and runs the single-object rules. Objects the cross-object rules need come back to the
parent, which runs those rules once per group (by default the objects of one directory: one
application), never across unrelated repositories given on one command line. Source positions
are resolved only for findings, from the node tree the loader kept.
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import select
import signal
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from berth.contract import ANNOTATION_IGNORE
from berth.lint.config import LintConfig
from berth.lint.context import CROSS_KINDS, Context
from berth.lint.loader import STDIN, STDIN_NAME, LoadedFile, expand_paths, load_file, load_objects
from berth.lint.model import DocRef, Document, Finding, Path, Severity
from berth.lint.rules import ANY_KIND, Check, Hit, Rule, all_rules
from berth.lint.rules._pod import as_list
from berth.lint.rules._training import VIEW_KIND, views
from berth.lint.rules.removed_api_version import removed
from berth.lint.schema import SchemaStore
from berth.lint.specs import RENDERED_SUFFIX, is_spec, reload, render_specs
from berth.lint.suppress import parse_ignore

# How objects are grouped for the cross-object rules (``--group-by``): the objects of one
# directory (default), of one file, of one kustomization (the nearest directory holding a
# kustomization file, else the file's own directory), or everything given together.
GROUP_BY = ("dir", "file", "kustomization", "none")
DEFAULT_GROUP_BY = "dir"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Schema errors a kustomize patch may have: it is a partial object.
_PATCH_TOLERATED = ("missing required field", "unknown field '$patch'")

# A kustomization file read for its patch list up to this size is kept until linted (not read twice).
_READ_AHEAD_MAX = 64 * 1024
# Below this many files a process pool costs more than it saves.
_POOL_MIN_FILES = 64
_CHUNK = 32
_LIVENESS_S = 0.5  # how often the parent, waiting for the chunk lock, checks that no worker died holding it


@dataclass(frozen=True)
class LintOptions:
    """What to check and how; the CLI fills this from flags and ``.berth-lint.yaml``."""

    kubernetes_version: str | None = None
    schema_dirs: tuple[str, ...] = ()
    schema_only: bool = False
    jobs: int = 0
    config: LintConfig = field(default_factory=LintConfig)
    group_by: str = DEFAULT_GROUP_BY


def _source_file(name: str) -> str:
    """The file a source came from (a spec's rendered stream belongs with its spec file)."""
    return name[: -len(RENDERED_SUFFIX)] if name.endswith(RENDERED_SUFFIX) else name


def _kustomization_file(directory: str, cache: dict[str, Any]) -> str | None:
    """The kustomization file in ``directory``, if any; each directory is listed once per run.

    One listing instead of a stat per candidate name: a walk of a repository asks this for
    every file, and the nearest root of a directory without one is found by going up.
    """
    listings: dict[str, frozenset[str]] = cache.setdefault("listings", {})
    names = listings.get(directory)
    if names is None:
        try:
            names = frozenset(os.listdir(directory))
        except OSError:
            names = frozenset()
        listings[directory] = names
    for name in KUSTOMIZATION_FILES:
        if name in names and os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return None


def _kustomization_root(directory: str, cache: dict[str, Any]) -> str:
    """The nearest directory at or above ``directory`` holding a kustomization file, else ``directory``."""
    roots: dict[str, str] = cache.setdefault("roots", {})
    if directory not in roots:
        found = directory
        current = os.path.abspath(directory or ".")
        while True:
            if _kustomization_file(current, cache) is not None:
                found = current
                break
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        roots[directory] = found
    return roots[directory]


def _patch_paths(root: str, cache: dict[str, Any]) -> set[str]:
    """Files a kustomization in ``root`` names as patches (patches, patchesStrategicMerge, patchesJson6902)."""
    out: set[str] = set()
    path = _kustomization_file(root, cache)
    if path is not None:
        loaded = load_file(path)
        if len(loaded.text) <= _READ_AHEAD_MAX:  # linted from here when the walk reaches it
            cache.setdefault("read-ahead", {})[path] = loaded
        doc = next((d for d in loaded.documents), None)
        obj = doc.obj if doc is not None else {}
        entries = [*as_list(obj.get("patches")), *as_list(obj.get("patchesJson6902"))]
        entries += as_list(obj.get("patchesStrategicMerge"))
        for entry in entries:
            ref = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(ref, str):
                out.add(os.path.normpath(os.path.join(root, ref)))
    return out


def is_kustomize_patch(file: str, cache: dict[str, Any]) -> bool:
    """A partial object a kustomization patches others with: named as a patch, or named like one under it.

    Patches leave out required fields (``selector``, ``spec``) and may carry ``$patch``: they are
    checked for unknown fields and wrong types only, and no rule runs on them.
    """
    directory, base = os.path.split(file)
    directories: dict[str, tuple[str, set[str], bool] | None] = cache.setdefault("patch-dirs", {})
    if directory not in directories:  # once per directory: its files share the answer but for their names
        root = _kustomization_root(directory, cache)
        patches: dict[str, set[str] | None] = cache.setdefault("patches", {})
        if root not in patches:  # once per root: a repository's directories share a few
            found = _kustomization_file(root, cache) is not None
            patches[root] = _patch_paths(root, cache) if found else None
        named = patches[root]
        absolute = os.path.abspath(directory or ".")
        # a patch's path is named relative to the root (absolute); the word "patch" anywhere below it
        below = os.path.relpath(absolute, root)
        directories[directory] = None if named is None else (absolute, named, "patch" in below.lower())
    known = directories[directory]
    if known is None:
        return False
    absolute, named, patch_dir = known
    return patch_dir or "patch" in base.lower() or os.path.join(absolute, base) in named


def group_key(name: str, group_by: str, cache: dict[str, Any] | None = None) -> str:
    """The group a source's objects join for the cross-object rules."""
    if group_by == "none":
        return ""
    file = _source_file(name)
    if group_by == "file" or file in (STDIN_NAME, OBJECTS_NAME):
        return file
    directory = os.path.dirname(file)
    if group_by == "kustomization":
        return _kustomization_root(directory, {} if cache is None else cache)
    return directory


@dataclass
class LintResult:
    """Findings of a run plus the counts the summary line prints."""

    findings: list[Finding]
    file_names: list[str] = field(default_factory=list)
    files: int = 0
    resources: int = 0
    skipped: int = 0
    unreadable: bool = False
    kubernetes_version: str = ""
    cel_skipped: int = 0  # CRD CEL rule evaluations left out (transition rules, unsupported calls, errors)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def exit_code(self, fail_on: Severity) -> int:
        """0 clean, 1 findings at or above ``fail_on``, 2 unreadable or unparsable input."""
        if self.unreadable:
            return 2
        return 1 if any(f.severity >= fail_on for f in self.findings) else 0


@dataclass
class _FileOutcome:
    name: str
    findings: list[Finding]
    cross_docs: list[Document]
    resources: int
    skipped: int
    unreadable: bool
    known_storage_classes: frozenset[str] = frozenset()  # declared `existing: true` by a spec
    # No document has an apiVersion or a kind (kustomization.yaml, package.json, a KEP's
    # metadata): found in a directory walk, the file is no manifest and its findings are dropped.
    not_manifest: bool = False
    cel_skipped: int = 0


class _Linter:
    """Per-process state: compiled schemas and the rules enabled for this run."""

    def __init__(self, options: LintOptions) -> None:
        self.options = options
        self.config = options.config
        self.schemas = SchemaStore(options.kubernetes_version, options.schema_dirs)
        self.rules = all_rules()
        self.known_ids = frozenset(self.rules)
        enabled = [r for r in self.rules.values() if r.check and r.id not in self.config.disabled]
        self.local_rules: dict[str, list[Rule]] = defaultdict(list)
        self.cross_rules: list[Rule] = []
        if not options.schema_only:
            for rule in enabled:
                if rule.cross:
                    self.cross_rules.append(rule)
                else:
                    for kind in rule.kinds:
                        self.local_rules[kind].append(rule)
        self.ctx = Context(known_storage_classes=self.config.known_storage_classes)
        self._kustomize: dict[str, Any] = {}
        self._by_kind: dict[str, list[tuple[Rule, Check]]] = {}

    def finding(self, rule_id: str, doc: Document | None, path: Path, message: str, fix: str | None) -> Finding | None:
        """A finding for ``rule_id`` with config severity applied; None if the rule is disabled."""
        if rule_id in self.config.disabled or (doc is not None and self.config.ignored_rule(doc.ref.file, rule_id)):
            return None
        rule = self.rules[rule_id]
        finding = Finding(
            rule=rule_id,
            severity=self.config.severity_of(rule_id, rule.severity),
            message=message,
            file=doc.ref.file if doc else "",
            path=path,
            fix=fix,
        )
        if doc is not None:
            finding.api_version, finding.kind = doc.api_version, doc.kind
            finding.namespace, finding.name = doc.namespace, doc.name
        return finding

    def _configured(self, problems: Iterable[Finding]) -> list[Finding]:
        out = []
        for problem in problems:
            if problem.rule not in self.config.disabled and not self.config.ignored_rule(problem.file, problem.rule):
                problem.severity = self.config.severity_of(problem.rule, problem.severity)
                out.append(problem)
        return out

    def lint_file(self, path: str, keep: dict[str, LoadedFile] | None = None) -> _FileOutcome:
        """``lint_loaded`` of a file, each document linted as soon as it is composed (bounded memory).

        A kustomization file read already for its patch list (named by the same path) is linted as
        it was read.
        """
        ahead = self._kustomize.get("read-ahead")
        loaded = ahead.pop(path, None) if ahead and path.endswith(KUSTOMIZATION_FILES) else None
        stream = None if loaded is not None else _Stream(self)
        if loaded is None:
            loaded = load_file(path, stream)
        if keep is not None:
            keep[loaded.name] = loaded
        return self.lint_loaded(loaded, keep, stream)

    def lint_loaded(
        self, loaded: LoadedFile, keep: dict[str, LoadedFile] | None = None, stream: _Stream | None = None
    ) -> _FileOutcome:
        """Findings of one source and its specs' rendered streams; ``keep`` collects those streams.

        The parent keeps them so cross-object findings in them are placed without rendering again
        (and sources that are no file, such as ``lint_objects``' objects, could not be read again).
        ``stream`` has linted the documents already, as they were composed.
        """
        outcome = self._lint_manifests(loaded, stream)
        for spec in render_specs(loaded):
            outcome.findings.extend(self._configured(spec.problems))
            outcome.unreadable |= bool(spec.problems)
            outcome.known_storage_classes |= spec.existing_classes
            rendered = spec.source
            if rendered is not None:
                if keep is not None:
                    keep[rendered.name] = rendered
                sub = self._lint_manifests(rendered)
                outcome.findings.extend(sub.findings)
                outcome.cross_docs.extend(sub.cross_docs)
                outcome.resources += sub.resources
                outcome.skipped += sub.skipped
                outcome.cel_skipped += sub.cel_skipped
        return outcome

    def _lint_manifests(self, loaded: LoadedFile, stream: _Stream | None = None) -> _FileOutcome:
        if stream is None:
            stream = _Stream(self)
            stream(loaded, 0)
        findings = self._configured(loaded.problems)
        for problem in findings:
            problem.source_line = problem.source_line or loaded.source_line(problem.line)
        findings.extend(stream.findings)
        cross, skipped, manifests = stream.cross, stream.skipped, stream.manifests
        cel_before = stream.cel_before
        outcome = _FileOutcome(loaded.name, findings, cross, manifests, skipped, loaded.unreadable)
        outcome.cel_skipped = self.schemas.cel.skipped.total() - cel_before
        outcome.not_manifest = (
            bool(loaded.documents or loaded.problems)
            and not loaded.unreadable
            and all(p.rule == "invalid-document" for p in loaded.problems)
            and not any("apiVersion" in d.obj or "kind" in d.obj for d in loaded.documents)
        )
        return outcome

    def _lint_document(self, doc: Document, *, patch: bool = False) -> list[Finding]:
        out: list[Finding] = []
        if not doc.api_version or not doc.kind:
            f = self.finding("invalid-document", doc, (), "object has no apiVersion or kind", "add both")
            return [f] if f else []
        gone = removed(doc.api_version, doc.kind, self.schemas.version)
        errors = None if gone else self.schemas.validate(doc.obj)
        if patch and errors:
            errors = [e for e in errors if not e.message.startswith(_PATCH_TOLERATED)]
        if gone:
            f = self.finding("removed-api-version", doc, ("apiVersion",), *gone)
            out.extend([f] if f else [])
        elif errors is None:
            msg = f"no schema for {doc.api_version} {doc.kind}: skipped, not validated"
            f = self.finding("schema-unknown-kind", doc, ("kind",), msg, "pass its CRD with --schema-dir")
            out.extend([f] if f else [])
        else:
            for err in errors:
                f = self.finding("schema-invalid", doc, err.path, err.message, None)
                out.extend([f] if f else [])
        if patch:
            return self.suppress(doc, out)
        ctx = self.ctx
        for rule, check in self._checks(doc.kind):
            hits = list(check(doc, ctx))
            if hits:  # most rules find nothing in most objects
                out.extend(self._hits(rule, doc, hits))
        for view in views(doc):  # each pod template of a training resource, as a Job
            for rule in self.local_rules.get(VIEW_KIND, ()):
                out.extend(self._hits(rule, view, rule.check(view, ctx) if rule.check else ()))
        return self.suppress(doc, out)

    def _checks(self, kind: str) -> list[tuple[Rule, Check]]:
        """The single-object rules for objects of ``kind`` (its own, then those for any kind), once per kind."""
        found = self._by_kind.get(kind)
        if found is None:
            rules = (*self.local_rules.get(kind, ()), *self.local_rules.get(ANY_KIND, ()))
            found = self._by_kind[kind] = [(r, r.check) for r in rules if r.check is not None]
        return found

    def _hits(self, rule: Rule, doc: Document, hits: Iterable[Hit]) -> list[Finding]:
        if doc.origin is not None and doc.translate is not None:
            origin, to = doc.origin, doc.translate
            moved = ((to(h.path), h) for h in hits)
            found = (self.finding(rule.id, origin, path, h.message, h.fix) for path, h in moved if path is not None)
        else:
            found = (self.finding(rule.id, doc, h.path, h.message, h.fix) for h in hits)
        return [f for f in found if f is not None]

    def suppress(self, doc: Document, findings: list[Finding]) -> list[Finding]:
        """Drop findings the object's ``berth.dev/ignore`` names; report bad entries."""
        if ANNOTATION_IGNORE not in doc.annotations:  # most objects suppress nothing
            return findings
        sup = parse_ignore(doc, self.known_ids)
        kept = [f for f in findings if f.rule not in sup.rules]
        for problem in sup.problems:
            f = self.finding("ignore-without-reason", doc, sup.path, problem, "write '<rule-id>: <reason>'")
            kept.extend([f] if f else [])
        return kept

    def lint_cross(self, docs: list[Document], known_classes: Iterable[str] = ()) -> list[tuple[Finding, DocRef]]:
        """Run the cross-object rules once over everything; findings are located afterwards."""
        ctx = Context(docs, {*self.config.known_storage_classes, *known_classes})
        out: list[tuple[Finding, DocRef]] = []
        for doc in docs:
            found: list[Finding] = []
            for rule in self.cross_rules:
                if doc.kind in rule.kinds and rule.check is not None:
                    found.extend(self._hits(rule, doc, rule.check(doc, ctx)))
            if found:
                suppressed = parse_ignore(doc.origin or doc, self.known_ids).rules
                out.extend((f, doc.ref) for f in found if f.rule not in suppressed)
        return out


class _Stream:
    """Lints a file's documents as the loader composes them (``load_file``'s ``each``).

    Each document is validated and its rules run while its node tree exists; findings are placed
    at once, and the tree is dropped unless a cross-object finding may still point into it or it
    is a berth spec (rendered afterwards). A large file's trees (~100x the text) are then never
    all alive together.
    """

    def __init__(self, linter: _Linter) -> None:
        self.linter = linter
        self.findings: list[Finding] = []
        self.cross: list[Document] = []
        self.skipped = 0
        self.manifests = 0
        self.patch: bool | None = None
        self.cel_before = linter.schemas.cel.skipped.total()

    def __call__(self, loaded: LoadedFile, start: int) -> None:
        linter = self.linter
        keep: set[int] = set()  # berth specs: rendered after the whole file is read
        relocatable: set[int] = set()  # cross-object findings may point into these
        for doc in loaded.documents[start:]:
            if is_spec(doc):
                keep.add(doc.ref.doc)
                continue
            self.manifests += 1
            if self.patch is None:
                self.patch = loaded.regular and is_kustomize_patch(loaded.name, linter._kustomize)
            for f in linter._lint_document(doc, patch=self.patch):
                f.line, f.column = loaded.locate(doc.ref, f.path)
                f.source_line = loaded.source_line(f.line)
                self.findings.append(f)
            if not doc.api_version or not doc.kind or self.patch:
                continue
            if not linter.schemas.knows(doc.api_version, doc.kind):
                self.skipped += 1
            if linter.cross_rules:
                found = [doc] if doc.kind in CROSS_KINDS else []
                found.extend(views(doc))
                if found:
                    relocatable.add(doc.ref.doc)
                    self.cross.extend(found)
        for index in {doc.ref.doc for doc in loaded.documents[start:]} - keep:
            loaded.drop(index, relocatable=index in relocatable)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while linting; reference counting still frees everything.

    A file's node trees and data stay alive until its findings are placed: millions of acyclic
    objects that each full collection walks again, so with the collector on lint time grew
    faster than the input (1, 2, 4 MiB in one file: 1.4, 3.5, 8.6 s of CPU) and without it grows
    linearly (0.8 s/MiB). Linting builds no reference cycles (none are left after an 8 MiB file).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Located = tuple[int, int, str]
Tasks = list[tuple[str, list[tuple[DocRef, Path]]]]  # cross-object findings to place: file, (document, path)


class _Chunks:
    """The run's files in chunks, and which chunks are still unclaimed: ``[front, back)`` in shared memory.

    Workers claim chunks from the front, the parent from the back, each under a lock and without
    asking any other process: no worker waits for the parent (busy linting, so slow to hand out
    work) and the two ends meet wherever the work is done. The ends live in an anonymous shared
    mapping and the lock is a pipe holding one byte (taking it reads the byte, giving it back
    writes it): forked processes share both, and nothing of multiprocessing is imported (with
    ``concurrent.futures`` ~0.14 G instructions, ~30 ms, before any worker could start).
    """

    def __init__(self, files: list[str]) -> None:
        self.chunks = [files[i : i + _CHUNK] for i in range(0, len(files), _CHUNK)]
        self._ends = mmap.mmap(-1, 16)  # MAP_SHARED: the same memory in every process forked from here
        struct.pack_into("qq", self._ends, 0, 0, len(self.chunks))
        self._take, self._give = os.pipe()
        os.write(self._give, b"x")

    def claim(self, *, front: bool, check: Callable[[], None] | None = None) -> int | None:
        """The index of the next unclaimed chunk from one end; None when every chunk is claimed.

        ``check`` (the parent's) runs while the lock stays taken and raises if a worker has ended:
        a worker killed while holding the byte would otherwise leave every process waiting forever.
        """
        if check is not None:
            while not select.select([self._take], [], [], _LIVENESS_S)[0]:
                check()
        os.read(self._take, 1)  # the lock: blocks while another process holds the byte
        try:
            first, end = struct.unpack_from("qq", self._ends)
            if first >= end:
                return None
            if front:
                struct.pack_into("q", self._ends, 0, first + 1)
                return int(first)
            struct.pack_into("q", self._ends, 8, end - 1)
            return int(end - 1)
        finally:
            os.write(self._give, b"x")

    def claimed_from_front(self) -> int:
        """Files in the chunks workers have claimed (started or done): the parent's progress estimate."""
        first = struct.unpack_from("q", self._ends)[0]
        return sum(len(chunk) for chunk in self.chunks[:first])

    def close(self) -> None:
        os.close(self._take)
        os.close(self._give)
        self._ends.close()


class _Worker:
    """A forked process that lints chunks it claims, then places cross-object findings in the files it kept.

    It inherits the parent's linter as it was at the fork (nothing is pickled): its rules are set
    up and the Kubernetes definitions its validators refer to are read once, in the parent, instead
    of once per process. It answers over two pipes: its outcomes by chunk index, then the positions
    of the findings in its files it is asked for (it kept those files, so none is read again).
    """

    def __init__(self, linter: _Linter, shared: _Chunks, siblings: Sequence[_Worker] = ()) -> None:
        down, to_worker = os.pipe()
        from_worker, up = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the worker; coverage does not follow a fork)
            os.close(to_worker)
            os.close(from_worker)
            for sibling in siblings:  # its copies of their pipes would keep them from seeing the parent's EOF
                sibling._close_pipes()
            try:
                _serve(linter, shared, os.fdopen(down, "rb"), os.fdopen(up, "wb"))  # exits 0 itself
            finally:
                os._exit(1)  # _serve raised: never back into the parent's code (its finally blocks, atexit)
        os.close(down)
        os.close(up)
        self.pid = pid
        self._send = os.fdopen(to_worker, "wb")
        self._receive = os.fdopen(from_worker, "rb")
        self.files: set[str] = set()  # the files it linted and kept
        self._reaped = False

    def outcomes(self, shared: _Chunks) -> dict[int, list[_FileOutcome]]:
        found: dict[int, list[_FileOutcome]] = self._answer()
        self.files.update(path for index in found for path in shared.chunks[index])
        return found

    def ask(self, tasks: Tasks) -> None:
        pickle.dump(tasks, self._send, pickle.HIGHEST_PROTOCOL)
        self._send.flush()

    def located(self) -> list[list[Located]]:
        answer: list[list[Located]] = self._answer()
        return answer

    def _answer(self) -> Any:
        try:
            kind, value = pickle.load(self._receive)
        except EOFError:
            raise RuntimeError("a lint worker process ended without an answer (killed?)") from None
        if kind == "error":
            raise RuntimeError(f"a lint worker process failed:\n{value}")
        return value

    def check(self) -> None:
        """Raise if the worker has ended: before the parent closes its pipes, a worker never exits."""
        if not self._reaped and os.waitpid(self.pid, os.WNOHANG)[0]:
            self._reaped = True
            self._answer()  # a dead worker's pipe holds its error or is at its end: either raises
            raise RuntimeError("a lint worker process ended before the parent was done")

    def kill(self) -> None:
        """End a worker the run gave up on: it may wait for the chunk lock a dead sibling holds."""
        if not self._reaped:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Tell the worker there is nothing more to place (if it still waits) and reap it."""
        self._close_pipes()
        if not self._reaped:
            os.waitpid(self.pid, 0)
            self._reaped = True

    def _close_pipes(self) -> None:
        for stream in (self._send, self._receive):
            with suppress(OSError):
                stream.close()


def _serve(linter: _Linter, shared: _Chunks, down: BinaryIO, up: BinaryIO) -> None:
    """The worker's whole life: lint claimed chunks, send the outcomes, place findings asked for."""

    def answer(kind: str, value: Any) -> None:
        pickle.dump((kind, value), up, pickle.HIGHEST_PROTOCOL)
        up.flush()

    kept: dict[str, LoadedFile] = {}
    try:
        with _no_cycle_collection():
            found: dict[int, list[_FileOutcome]] = {}
            while (index := shared.claim(front=True)) is not None:
                found[index] = [linter.lint_file(path, kept) for path in shared.chunks[index]]
            answer("outcomes", found)
            with suppress(EOFError):  # at EOF the parent has nothing to place in this worker's files
                tasks: Tasks = pickle.load(down)
                answer("located", [_locate_all(kept.get(name) or reload(name), wanted) for name, wanted in tasks])
    except Exception:
        import traceback

        answer("error", traceback.format_exc())
        raise
    # Exit with the files still referenced: freeing their trees (~20 ms) would keep the parent waiting.
    os._exit(0)


def _lint_shared(
    workers: list[_Worker],
    linter: _Linter,
    shared: _Chunks,
    progress: Progress | None,
    keep: dict[str, LoadedFile],
) -> list[_FileOutcome]:
    """Outcomes of the chunks' files in order, linted by the workers and by this process together.

    This process claims chunks from the end while the workers claim from the start, so no
    process waits idle, and one fewer process starts up than with ``jobs`` workers. The files
    this process lints stay in ``keep``: cross-object findings in them are placed without
    reading them again.
    """
    total = sum(len(chunk) for chunk in shared.chunks)
    found: dict[int, list[_FileOutcome]] = {}
    mine = 0

    def check() -> None:
        for worker in workers:
            worker.check()

    while (index := shared.claim(front=False, check=check)) is not None:
        found[index] = [linter.lint_file(path, keep) for path in shared.chunks[index]]
        mine += len(shared.chunks[index])
        if progress is not None:
            progress(min(total, mine + shared.claimed_from_front()), total)
    for worker in workers:
        found.update(worker.outcomes(shared))
    if progress is not None:
        progress(total, total)
    return [outcome for index in range(len(shared.chunks)) for outcome in found[index]]


def _locate_all(source: LoadedFile, wanted: list[tuple[DocRef, Path]]) -> list[Located]:
    out = []
    for ref, path in wanted:
        line, col = source.locate(ref, path)
        out.append((line, col, source.source_line(line)))
    return out


Progress = Callable[[int, int], None]


def lint_paths(
    paths: Sequence[str],
    options: LintOptions | None = None,
    progress: Progress | None = None,
    *,
    retain: list[object] | None = None,
) -> LintResult:
    """Lint files, directories (recursively) and ``-`` (stdin); ``progress(done, total)`` per file.

    ``retain``, given by a process that exits right after the report (``berth lint``), is handed
    what the run kept (the files it read, their node trees) instead of freeing it here: freeing
    those millions of small objects took 60 ms after the work was done, which exiting skips.
    """
    with _no_cycle_collection():
        return _lint_paths(paths, options or LintOptions(), progress, retain)


def _lint_paths(
    paths: Sequence[str], options: LintOptions, progress: Progress | None, retain: list[object] | None
) -> LintResult:
    files = [p for p in expand_paths(paths) if not options.config.ignores(p)]
    linter = _Linter(options)
    loaded: dict[str, LoadedFile] = {}
    outcomes: list[_FileOutcome] = []
    jobs = options.jobs or os.cpu_count() or 1
    disk_files = [f for f in files if f != STDIN]
    if STDIN in files:
        stdin = load_file(STDIN)
        loaded[stdin.name] = stdin
        outcomes.append(linter.lint_loaded(stdin, loaded))
    workers: list[_Worker] = []
    shared = None
    try:
        if jobs > 1 and len(disk_files) >= _POOL_MIN_FILES:
            linter.schemas.warm()  # before the fork: read once, inherited by every worker
            shared = _Chunks(disk_files)
            # this process lints too: jobs - 1 workers (each pays its own CEL start-up and pickling)
            for _ in range(jobs - 1):
                workers.append(_Worker(linter, shared, workers))
            outcomes.extend(_lint_shared(workers, linter, shared, progress, loaded))
        else:
            for done, path in enumerate(disk_files, 1):
                outcomes.append(linter.lint_file(path, loaded))
                if progress is not None:
                    progress(done, len(disk_files))
        explicit = frozenset(STDIN_NAME if p == STDIN else p for p in paths if p == STDIN or not os.path.isdir(p))
        if retain is not None:
            retain.extend((linter, outcomes, loaded))
        return _finish(linter, outcomes, loaded, workers, explicit)
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    finally:
        for worker in workers:
            worker.close()
        if shared is not None:
            shared.close()


OBJECTS_NAME = "<objects>"


def lint_objects(
    objects: Iterable[Mapping[str, Any]], options: LintOptions | None = None, *, name: str = OBJECTS_NAME
) -> LintResult:
    """Lint objects already in memory (``berth plan``'s rendered stack) as one source named ``name``.

    The same rules, suppressions and config as ``lint_paths``, without writing a file to read it
    back; findings name the object and field path, and have no line or column (0) as there is
    no text. A berth spec among the objects is rendered and its stream linted, as in a file.
    """
    linter = _Linter(options or LintOptions())
    with _no_cycle_collection():
        source = load_objects(name, objects)
        sources = {source.name: source}
        return _finish(linter, [linter.lint_loaded(source, sources)], sources, (), frozenset({name}))


def _finish(
    linter: _Linter,
    outcomes: list[_FileOutcome],
    loaded: dict[str, LoadedFile],
    workers: Sequence[_Worker],
    explicit: frozenset[str] = frozenset(),
) -> LintResult:
    """Per-source outcomes plus the cross-object findings, sorted."""
    result = _collect(linter, outcomes, explicit)
    if linter.cross_rules:
        result.findings.extend(_cross(linter, outcomes, loaded, workers))
    result.findings.sort(key=Finding.sort_key)
    return result


def _collect(linter: _Linter, outcomes: list[_FileOutcome], explicit: frozenset[str] = frozenset()) -> LintResult:
    """Per-source outcomes summed; files a walk found that are no manifest contribute nothing."""
    result = LintResult(findings=[], kubernetes_version=linter.schemas.version)
    for outcome in outcomes:
        if outcome.not_manifest and outcome.name not in explicit:
            result.files += 1
            result.file_names.append(outcome.name)
            continue
        result.findings.extend(outcome.findings)
        result.files += 1
        result.file_names.append(outcome.name)
        result.resources += outcome.resources
        result.skipped += outcome.skipped
        result.cel_skipped += outcome.cel_skipped
        result.unreadable |= outcome.unreadable
    return result


def _cross(
    linter: _Linter, outcomes: list[_FileOutcome], loaded: dict[str, LoadedFile], workers: Sequence[_Worker]
) -> list[Finding]:
    """Cross-object findings per group, each placed by the process that linted its file (it kept it)."""
    group_by = linter.options.group_by
    cache: dict[str, Any] = {}
    docs: dict[str, list[Document]] = defaultdict(list)
    known: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes:
        known[group_key(outcome.name, group_by, cache)] |= outcome.known_storage_classes
        for doc in outcome.cross_docs:
            docs[group_key(doc.ref.file, group_by, cache)].append(doc)
    pending = [hit for key, group in docs.items() for hit in linter.lint_cross(group, known[key])]
    by_file: dict[str, list[tuple[Finding, DocRef]]] = defaultdict(list)
    for finding, ref in pending:
        by_file[ref.file].append((finding, ref))
    tasks: Tasks = [(name, [(ref, f.path) for f, ref in items]) for name, items in by_file.items()]
    # each worker places those in the files it linted (kept) while this process places its own
    asked: list[tuple[_Worker, Tasks]] = []
    for worker in workers:
        theirs = [task for task in tasks if task[0] not in loaded and _source_file(task[0]) in worker.files]
        if theirs:
            worker.ask(theirs)
            asked.append((worker, theirs))
    placed = {name for _, theirs in asked for name, _ in theirs}
    located = {
        name: _locate_all(loaded[name] if name in loaded else reload(name), wanted)
        for name, wanted in tasks
        if name not in placed
    }
    for worker, theirs in asked:
        located.update(zip((name for name, _ in theirs), worker.located(), strict=True))
    out: list[Finding] = []
    for name, items in by_file.items():
        for (finding, _ref), (line, col, text) in zip(items, located[name], strict=True):
            finding.line, finding.column, finding.source_line = line, col, text
            out.append(finding)
    return out
