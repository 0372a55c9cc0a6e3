"""Read manifests into objects that remember where every field came from.

``berth.yamlsource`` composes each document's node tree and builds plain dicts from it (as
the API server reads YAML, duplicate keys reported); the tree is kept so a finding's key
path maps back to ``file:line:col`` only when a finding needs it.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from berth.contract import API_GROUP
from berth.lint.model import DocRef, Document, Finding, Path, Severity
from berth.lint.rules.ambiguous_octal import RULE as OCTAL
from berth.yamlsource import NodeLocator, Octal, YamlError, build, compose_all

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Larger than manifest files in the wild (the biggest rendered bundles are a few MiB; the API
# server takes 3 MiB per request); a bigger file is one finding, not minutes of parsing and
# gigabytes of node tree (a dense 16 MiB file of workloads takes ~13 s of CPU and ~1.1 GiB).
MAX_FILE_BYTES = 16 * 1024 * 1024
STDIN = "-"
# Below this size a file keeps the trees cross-object findings may point into (~100x the text, so
# at most ~100 MiB): composing them again would cost CPU (~18% more for the full lint of a stream
# where most documents get such findings) to save memory that does not matter at this size.
KEEP_TREES_BELOW = 1024 * 1024
STDIN_NAME = "<stdin>"


@dataclass
class LoadedFile:
    """One input file: its objects, its node trees (for positions) and load problems."""

    name: str
    text: str = ""
    roots: dict[int, yaml.Node] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    unreadable: bool = False
    regular: bool = False  # read from a regular file on disk (not stdin, a rendered spec or objects)
    # Documents whose tree was dropped but may still be located: (start of the root's line, end, line)
    spans: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    _again: tuple[int, yaml.Node | None] = (-1, None)

    def drop(self, index: int, *, relocatable: bool = False) -> None:
        """Forget a document's node tree (~100x its text); ``relocatable`` keeps where its text is.

        A relocatable document is composed again from its own lines when a finding must be placed
        in it. Only for YAML without directives: a JSON stream may hold several values per line,
        and a ``%TAG`` directive belongs to the stream, not the document's lines.
        """
        root = self.roots.pop(index, None)
        if root is None or not relocatable:
            return
        if len(self.text) < KEEP_TREES_BELOW or not self._relocatable:
            self.roots[index] = root  # keep it: its lines alone may not compose to the same tree
            return
        start = root.start_mark.index - root.start_mark.column
        self.spans[index] = (start, root.end_mark.index, root.start_mark.line)

    @cached_property
    def _relocatable(self) -> bool:
        """YAML (not a JSON stream) without directives: a document's own lines compose to its tree."""
        head = self.text[:4096].lstrip()
        return head[:1] not in ("{", "[") and not self.text.startswith("%") and "\n%" not in self.text

    def _root(self, index: int) -> tuple[yaml.Node | None, int]:
        """The document's tree and the line its text starts on (0 when the tree was kept)."""
        root = self.roots.get(index)
        if root is not None or index not in self.spans:
            return root, 0
        start, end, line = self.spans[index]
        if self._again[0] != index:  # one document at a time: findings are placed file by file
            try:
                again = next((n for n in compose_all(self.text[start:end]) if n is not None), None)
            except YamlError:
                again = None
            self._again = (index, again)
        return self._again[1], line

    def locator(self, ref: DocRef) -> NodeLocator | None:
        """Positions in the document (or ``List`` item) ``ref`` names; None for objects read from no text."""
        root = self.roots.get(ref.doc)
        if root is None:
            return None
        whole = NodeLocator(root)
        return whole if ref.item is None else whole.at(("items", ref.item))

    def locate(self, ref: DocRef, path: Path) -> tuple[int, int]:
        """1-based line and column of the deepest node of ``path`` that exists (its key, in a mapping)."""
        root, shift = self._root(ref.doc)
        if root is None:
            return 0, 0
        whole = NodeLocator(root)
        line, column = (whole if ref.item is None else whole.at(("items", ref.item)))(path, key=True)
        return line + shift, column

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def source_line(self, line: int) -> str:
        """The text of a 1-based line (for the text output)."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""


# Called after each composed document with the file and the index in ``documents`` of the first
# Document it added (a ``List`` adds several): lint can then use the document's node tree and
# drop it before the next one is composed, instead of holding every tree of a large file at once.
OnDocument = Callable[[LoadedFile, int], None]


def load_text(name: str, text: str, each: OnDocument | None = None, *, regular: bool = False) -> LoadedFile:
    """Parse every YAML/JSON document of ``text``; keeps what parsed before a syntax error."""
    loaded = LoadedFile(name=name, text=text, regular=regular)
    try:
        for index, root in enumerate(compose_all(text)):
            start = len(loaded.documents)
            _add_document(loaded, index, root)
            if each is not None and len(loaded.documents) > start:
                each(loaded, start)
    except YamlError as err:
        message = err.message if err.message.startswith("JSON") else f"YAML syntax error: {err.message}"
        loaded.problems.append(_problem("yaml-syntax", message, name, err.line, err.column))
        loaded.unreadable = True
    return loaded


def _add_document(loaded: LoadedFile, index: int, root: yaml.Node | None) -> None:
    if root is None or (isinstance(root, yaml.ScalarNode) and build(root).data is None):
        return
    loaded.roots[index] = root
    if not isinstance(root, yaml.MappingNode):
        line, col = root.start_mark.line + 1, root.start_mark.column + 1
        msg = "document is not a Kubernetes object (expected a mapping with apiVersion and kind)"
        loaded.problems.append(_problem("invalid-document", msg, loaded.name, line, col))
        return
    built = build(root)
    for dup in built.duplicates:
        msg = f"duplicate key {dup.key!r}: the API server rejects it"
        loaded.problems.append(_problem("duplicate-key", msg, loaded.name, dup.line, dup.column))
    spec = isinstance(built.data, dict) and str(built.data.get("apiVersion", "")).startswith(f"{API_GROUP}/")
    for octal in built.octals:
        found = _octal_problem(octal, spec=spec)
        if found is not None:
            finding = _problem(OCTAL.id, found[0], loaded.name, octal.line, octal.column, found[1])
            finding.severity = OCTAL.severity
            loaded.problems.append(finding)
    _add_object(loaded, index, built.data)


def _octal_problem(octal: Octal, *, spec: bool) -> tuple[str, str] | None:
    """Message and fix for a scalar YAML 1.1 and 1.2 read differently; None where the reader's YAML is clear.

    Kubernetes reads manifests as YAML 1.1 (kubectl, sigs.k8s.io/yaml, PyYAML): ``0644`` is octal,
    420, and ``0o644`` the text "0o644". berth reads its specs, like ruamel.yaml any file, as YAML
    1.2: ``0644`` is decimal 644 (no valid file mode) and ``0o644`` is 420.
    """
    digits = octal.text.replace("_", "")
    if digits.startswith("0o"):
        if spec:
            return None
        value = int(digits[2:], 8)
        message = f"{octal.text} is the text '{octal.text}' to kubectl (YAML 1.1 has no 0o), {value} only to YAML 1.2"
        return message, f"write {value} (# {octal.text} in a comment)"
    eleven, twelve = int(digits, 8), int(digits)
    if spec:
        message = f"{octal.text} is decimal {twelve} in a berth spec (YAML 1.2), not octal {eleven} as kubectl reads it"
        return message, f"write {eleven} or 0o{digits.lstrip('0')}"
    message = (
        f"{octal.text} is octal {eleven} to kubectl (YAML 1.1) but decimal {twelve} to YAML 1.2 parsers "
        "(ruamel.yaml, berth specs, editors' YAML 1.2 schemas)"
    )
    return message, f"write {eleven}, the value kubectl sends (# {octal.text} in a comment)"


def _add_object(loaded: LoadedFile, index: int, obj: dict[str, Any]) -> None:
    """One document's object, or each item of a ``*List`` kind, as its own Document."""
    items = obj.get("items")
    if str(obj.get("kind", "")).endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                loaded.documents.append(Document(DocRef(loaded.name, index, i), item))
        return
    loaded.documents.append(Document(DocRef(loaded.name, index), obj))


def load_objects(name: str, objects: Iterable[Mapping[str, Any]]) -> LoadedFile:
    """Objects already in memory as one source named ``name``: no text, so no positions.

    Each object is a document, as if written one per ``---``; Lists are expanded the same way.
    """
    loaded = LoadedFile(name=name)
    for index, obj in enumerate(objects):
        if isinstance(obj, Mapping):
            _add_object(loaded, index, dict(obj))
        else:
            msg = "object is not a Kubernetes object (expected a mapping with apiVersion and kind)"
            loaded.problems.append(_problem("invalid-document", msg, name, 0, 0))
    return loaded


def _problem(rule: str, message: str, file: str, line: int, col: int, fix: str | None = None) -> Finding:
    return Finding(rule=rule, severity=Severity.ERROR, message=message, file=file, line=line, column=col, fix=fix)


def load_file(path: str, each: OnDocument | None = None) -> LoadedFile:
    """Read and parse one file (``-`` is stdin); an unreadable file becomes a finding.

    Stdin is read as bytes like any file, so binary input is a finding, not a traceback.
    """
    name = STDIN_NAME if path == STDIN else path
    loaded = LoadedFile(name=name, unreadable=True)
    regular = False
    try:
        if path == STDIN:
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                msg = f"input is over the {MAX_FILE_BYTES // 2**20} MiB limit: not read"
                loaded.problems.append(_problem("unreadable-file", msg, name, 0, 0))
                return loaded
        else:
            try:
                fh = open(path, "rb")  # noqa: SIM115 (closed below; a directory is told apart here, no stat first)
            except IsADirectoryError:  # one given as a file: say why (one a walk could not enter fails here)
                os.listdir(path)
                raise IsADirectoryError(errno.EISDIR, "is a directory", path) from None
            with fh:
                status = os.fstat(fh.fileno())
                regular, size = stat.S_ISREG(status.st_mode), status.st_size
                if size > MAX_FILE_BYTES:
                    msg = f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit: not read"
                    loaded.problems.append(_problem("unreadable-file", msg, name, 0, 0))
                    return loaded
                raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        what = "directory" if path != STDIN and os.path.isdir(path) else "file"  # a stat only when it failed
        loaded.problems.append(_problem("unreadable-file", f"cannot read {what}: {err.strerror}", name, 0, 0))
        return loaded
    text, problem = decode(raw, name)
    if text is not None:
        loaded = load_text(name, text, each, regular=regular)
    if problem is not None:  # unreadable, or read as kubectl reads it but not as the author wrote it
        loaded.problems.insert(0, problem)
        loaded.unreadable = True
    return loaded


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode(raw: bytes, name: str) -> tuple[str | None, Finding | None]:
    """The text kubectl reads from file ``name``'s bytes, and what is wrong with them (None: nothing).

    kubectl (cli-runtime's file visitor) honours a UTF-8 or UTF-16 byte-order mark and otherwise
    reads UTF-8, each invalid byte becoming U+FFFD: a Latin-1 file is applied with its accented
    letters replaced. Such text is returned with a problem, so the rest is still linted. Text
    with NUL bytes and no byte-order mark (UTF-16 without a BOM) neither reads: None.
    """
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        message = "UTF-32 (its byte-order mark says so): kubectl cannot read it either"
        return None, _problem("unreadable-file", message, name, 1, 1, "save the file as UTF-8")
    encoding, body = "utf-8", raw
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            encoding, body = codec, raw[len(bom) :]
            break
    if encoding == "utf-8" and b"\0" in body:
        before = body[: body.index(b"\0")].decode("utf-8", "replace")
        message = "NUL bytes in the text: UTF-16 without a byte-order mark? kubectl cannot read it either"
        fix = "save the file as UTF-8, or as UTF-16 with its BOM"
        return None, _problem("unreadable-file", message, name, *_position(before, len(before)), fix)
    try:
        return body.decode(encoding), None
    except UnicodeDecodeError as err:
        return body.decode(encoding, "replace"), _bad_bytes(body, encoding, err, name)


def _bad_bytes(body: bytes, encoding: str, err: UnicodeDecodeError, name: str) -> Finding:
    before = body[: err.start].decode(encoding)
    line, column = _position(before, len(before))
    if encoding != "utf-8":
        message = f"not {encoding.upper()} as its byte-order mark says: {err.reason} at byte {err.start}"
        return _problem("unreadable-file", message, name, line, column, "save the file as UTF-8")
    byte = body[err.start]
    count = body.decode("utf-8", "replace").count("\ufffd") - body.count("\ufffd".encode())
    message = (
        f"not UTF-8: byte 0x{byte:02X} ({err.reason}; {bytes([byte]).decode('cp1252', 'replace')!r} in "
        f"Latin-1/Windows-1252?): kubectl reads {count} such byte sequence(s) as U+FFFD '\ufffd', "
        "so what it applies differs from this file"
    )
    return _problem("unreadable-file", message, name, line, column, "save the file as UTF-8 (iconv -f latin1 -t utf-8)")


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the character at ``offset`` of ``text``, or just past it."""
    prefix = text[:offset]
    return prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1


def expand_paths(paths: Iterable[str]) -> Iterator[str]:
    """Files to lint: given files as-is, directories walked recursively for manifest suffixes.

    Hidden files and directories (``.git``, ``.berth-lint.yaml``) are skipped in walks, and so
    are FIFOs, sockets and devices found in a walk (reading one would block); a broken link and
    a directory the walk cannot enter are yielded so they are reported as unreadable.
    """
    for path in paths:
        if path == STDIN or not os.path.isdir(path):
            yield path
            continue
        unreadable: list[OSError] = []
        yield from _walk(path, unreadable)
        yield from (str(err.filename) for err in unreadable)


def _walk(directory: str, unreadable: list[OSError]) -> Iterator[str]:
    """``expand_paths`` of one directory, as ``os.walk`` (top-down, links to directories not entered).

    The directory entries' types are used rather than a ``stat`` per file (a repository's
    thousands of small manifests each cost one otherwise).
    """
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as err:
        unreadable.append(err)
        return
    subdirectories = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not entry.is_symlink():
                subdirectories.append(entry.path)
        elif entry.name.endswith(MANIFEST_SUFFIXES) and (
            entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
        ):
            yield entry.path
    for subdirectory in subdirectories:
        yield from _walk(subdirectory, unreadable)
