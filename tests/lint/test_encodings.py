"""Input encodings and JSON as kubectl reads them: UTF-16 and UTF-8 byte-order marks, Latin-1, JSON streams, Lists.

kubectl's file reader (cli-runtime) honours a UTF-8 or UTF-16 byte-order mark, reads anything else
as UTF-8 with each invalid byte replaced by U+FFFD, and decodes a JSON file as a stream of values.
Findings must be at the same line and column in every encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.lint.engine import LintOptions, lint_paths
from berth.lint.loader import load_text

from ..conftest import berth_process
from .conftest import DATA
from .test_rules import expectations

OPTIONS = LintOptions(jobs=1)

# The same findings must come out whatever the file's encoding; "é" and "ü" are not ASCII.
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: Café_Config
  annotations: {note: "Grüße"}
data: {greeting: "déjà vu"}
---
apiVersion: extensions/v1beta1
kind: Deployment
metadata: {name: web}
# expect: 4:3 invalid-name: name 'Café_Config' is not a DNS-1123 subdomain
# expect: 8:1 removed-api-version: extensions/v1beta1 Deployment was removed in Kubernetes 1.16: use apps/v1
"""


def _found(path: Path) -> list[tuple[str, int, int, str]]:
    result = lint_paths([str(path)], OPTIONS)
    return sorted((f.rule, f.line, f.column, f.message) for f in result.findings)


def _assert_expected(path: Path, expected: list[tuple[str, int, int, str]]) -> None:
    got = [g for g in _found(path) if g[0] in {e[0] for e in expected}]
    assert len(got) == len(expected), got
    for (rule, line, column, part), hit in zip(sorted(expected), got, strict=True):
        assert hit[:3] == (rule, line, column) and part in hit[3], f"expected {line}:{column} {rule}: {part}, got {hit}"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_same_findings_at_the_same_places_in_every_encoding(tmp_path: Path, encoding: str, bom: bytes) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(bom + TEMPLATE.encode(encoding))
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE, encoding="utf-8")
    _assert_expected(path, expectations(template))
    result = lint_paths([str(path)], OPTIONS)
    assert not result.unreadable and result.resources == 2
    assert result.findings[0].source_line.startswith(("  name: Café_Config", "apiVersion"))


def test_latin1_is_one_located_finding_the_rest_is_linted_and_exit_is_2(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(TEMPLATE.encode("latin-1"))
    out = berth_process("lint", "-f", "json", str(tmp_path / "latin1.yaml"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    found = [(f["rule"], f["line"], f["column"], f["message"]) for f in json.loads(out.stdout)]
    encoding = [f for f in found if f[0] == "unreadable-file"]
    assert len(encoding) == 1
    assert encoding[0][1:3] == (4, 12)  # the 'é' of "Café", the first byte that is not UTF-8
    assert encoding[0][3].startswith("not UTF-8: byte 0xE9 (invalid continuation byte; 'é' in Latin-1")
    assert "kubectl reads 6 such byte sequence(s) as U+FFFD" in encoding[0][3]
    # the rest is linted as kubectl would read it
    assert ("removed-api-version", 8, 1) in {f[:3] for f in found}
    assert any(f[0] == "invalid-name" and "Caf\ufffd_Config" in f[3] for f in found)


def test_utf16_without_a_bom_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "u16.yaml").write_bytes(TEMPLATE.encode("utf-16-le"))
    result = lint_paths([str(tmp_path / "u16.yaml")], OPTIONS)
    assert result.unreadable and result.resources == 0
    [finding] = result.findings
    assert (finding.rule, finding.line, finding.column) == ("unreadable-file", 1, 2)
    assert "UTF-16 without a byte-order mark" in finding.message and finding.fix


def test_utf32_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "u32.yaml").write_bytes(TEMPLATE.encode("utf-32"))  # with its byte-order mark
    result = lint_paths([str(tmp_path / "u32.yaml")], OPTIONS)
    assert result.unreadable and result.resources == 0
    assert [(f.rule, f.line, f.column, f.message) for f in result.findings] == [
        ("unreadable-file", 1, 1, "UTF-32 (its byte-order mark says so): kubectl cannot read it either")
    ]


def test_broken_utf16_after_its_bom_is_located(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_bytes(b"\xff\xfe" + "kind: X\nname: y\n".encode("utf-16-le") + b"\x00")
    result = lint_paths([str(tmp_path / "odd.yaml")], OPTIONS)
    assert result.unreadable
    first = result.findings[0]
    assert (first.rule, first.line, first.column) == ("unreadable-file", 3, 1)
    assert first.message.startswith("not UTF-16-LE as its byte-order mark says: truncated data")


# kubectl create --dry-run=client -o json of a Deployment and a ConfigMap, concatenated as
# kubectl prints several objects; and the same two as `kubectl get -o json` prints a List.
STREAM = [
    ("replicas-without-spread", 23, 13, "2 replicas without topologySpreadConstraints"),
    ("image-latest-tag", 27, 25, "image 'pytorch/pytorch' is not pinned to a version"),
    ("invalid-name", 41, 9, "name 'Cfg_1' is not a DNS-1123 subdomain"),
]
LIST = [
    ("replicas-without-spread", 26, 21, "2 replicas without topologySpreadConstraints"),
    ("image-latest-tag", 30, 33, "image 'pytorch/pytorch' is not pinned to a version"),
    ("invalid-name", 44, 17, "name 'Cfg_1' is not a DNS-1123 subdomain"),
]


@pytest.mark.parametrize(("name", "expected"), [("kubectl-stream.json", STREAM), ("kubectl-get-list.json", LIST)])
def test_kubectl_json_output_is_linted_with_positions(name: str, expected: list[tuple[str, int, int, str]]) -> None:
    _assert_expected(DATA / name, expected)
    result = lint_paths([str(DATA / name)], OPTIONS)
    assert result.resources == 2 and not result.unreadable
    lines = (DATA / name).read_text().splitlines()
    for rule, line, column, _ in expected:  # each position is on the field the message names
        assert lines[line - 1][column - 1] == '"', (rule, lines[line - 1])


def test_json_values_are_typed_as_json_and_escapes_read() -> None:
    text = '{"kind": "X", "n": 1e3, "f": 2.5, "i": 7, "b": true, "z": null, "s": "\\ud83d\\ude80 \\/"}\n'
    obj = load_text("j.json", text + text).documents[1].obj
    assert obj == {"kind": "X", "n": 1000.0, "f": 2.5, "i": 7, "b": True, "z": None, "s": "\U0001f680 /"}
    # YAML 1.1 would have read 1e3 as text: a plain YAML file still does
    assert load_text("y.yaml", "kind: X\nn: 1e3\n").documents[0].obj["n"] == "1e3"


def test_json_stream_syntax_error_is_located_and_values_before_it_are_kept() -> None:
    loaded = load_text("s.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}\n{"kind": }\n')
    assert [d.name for d in loaded.documents] == ["a"]
    [problem] = loaded.problems
    assert (problem.rule, problem.line, problem.column) == ("yaml-syntax", 2, 10)
    assert problem.message == "JSON syntax error: Expecting value"
    # JSON followed by YAML documents is a YAML stream, read as such
    assert [d.obj for d in load_text("m.yaml", '{"kind": "A"}\n---\nkind: B\n').documents] == [
        {"kind": "A"},
        {"kind": "B"},
    ]


def test_kubectl_json_piped_in_as_utf16_is_linted_from_stdin() -> None:
    """Windows PowerShell 5.1's ``kubectl get -o json > list.json`` writes UTF-16 with a BOM; then ``lint -``."""
    text = (DATA / "kubectl-get-list.json").read_text(encoding="utf-8")
    out = berth_process("lint", "-", "-f", "json", stdin=text.encode("utf-16"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    found = {(f["rule"], f["line"], f["column"]) for f in json.loads(out.stdout)}
    assert {(rule, line, column) for rule, line, column, _ in LIST} <= found
    assert {f["file"] for f in json.loads(out.stdout)} == {"<stdin>"}
