"""The conventions every command shares: -o is the output format, -n says where its default comes from,
start-up loads no heavy library. Run through typer's CliRunner: no cluster, no subprocess."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from berth.cli.app import app
from berth.errors import UsageError

GROUPS = {"ckpt", "sandbox", "operator"}
# Every command with an output format, and arguments that reach the format check before any work
# (test_every_command_with_an_output_format_is_listed keeps this list complete).
FORMAT_COMMANDS = [
    ["plan", "x.yaml"],
    ["up", "x.yaml"],
    ["resize", "x.yaml"],
    ["status", "t"],
    ["wait", "t"],
    ["scale", "t", "2"],
    ["gc", "t"],
    ["down", "t"],
    ["doctor", "t"],
    ["probe", "d"],
    ["bench", "gp3", "--image", "i"],
    ["stage", "s3://b/p", "d"],
    ["backup", "t"],
    ["backups"],
    ["restore", "t", "--from", "b"],
    ["seed", "d", "--from", "s3://b/p", "--rank", "0", "--world", "1"],
    ["explain", "x.yaml"],
    ["ckpt", "list", "d"],
    ["ckpt", "show", "d", "1"],
    ["ckpt", "verify", "d"],
    ["ckpt", "prune", "d"],
    ["ckpt", "archive", "d"],
    ["ckpt", "restore", "d"],
    ["sandbox", "status"],
    ["sandbox", "image"],
    ["operator", "crd"],
    ["operator", "install"],
]


def _leaves() -> list[tuple[str, Any]]:
    """Every command of the app as ("group name", click command), from typer's own command tree."""
    import typer.main

    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append((" ".join(path), command))

    walk(typer.main.get_command(app), [])
    return found


def _with_option(option: str, first_argument: str | None = None) -> list[str]:
    """Commands that take OPTION (and, if given, whose first positional argument is FIRST_ARGUMENT)."""
    out = []
    for path, command in _leaves():
        arguments = [p.name for p in command.params if not any(o.startswith("-") for o in p.opts)]
        if option in {o for p in command.params for o in p.opts} and (
            first_argument is None or arguments[:1] == [first_argument]
        ):
            out.append(path)
    return out


# Where -n is not "the cluster's namespace": a filter, or the target of a restore. Their help says so.
OTHER_NAMESPACE = {"backups": "default: any", "restore": "default: the one the backup was taken in"}
NAME_COMMANDS = [c for c in _with_option("--namespace", "name") if c not in OTHER_NAMESPACE]  # a cluster name
SPEC_COMMANDS = _with_option("--namespace", "spec")


def test_every_command_with_an_output_format_is_listed() -> None:
    listed = {" ".join(a[:2] if a[0] in GROUPS else a[:1]) for a in FORMAT_COMMANDS}
    assert set(_with_option("--output")) == listed
    assert {"status", "scale", "gc", "down", "doctor", "wait", "backup"} <= set(NAME_COMMANDS)
    assert {"plan", "up", "resize"} <= set(SPEC_COMMANDS)


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize("command", NAME_COMMANDS)
def test_namespace_help_of_name_commands_claims_no_spec_default(command: str) -> None:
    text = _help(command)
    assert "-n, --namespace" in text
    assert "spec" not in text.split("--namespace", 1)[1].split("-o, --output")[0]
    assert "default: the context's namespace" in text


@pytest.mark.parametrize(("command", "default"), OTHER_NAMESPACE.items())
def test_namespace_help_says_what_else_it_means(command: str, default: str) -> None:
    assert default in _help(command).split("--namespace", 1)[1]


@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_namespace_help_of_spec_commands_names_the_spec(command: str) -> None:
    assert "default: the spec's metadata.namespace, else the context's" in _help(command)


@pytest.mark.parametrize("args", FORMAT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_output_is_text_or_json_and_checked_before_anything_runs(args: list[str]) -> None:
    command = args[:2] if args[0] in GROUPS else args[:1]
    assert "-o, --output text|json Output format: text or json. [default: text]" in _help(*command)
    result = CliRunner().invoke(app, [*args, "-o", "yaml"])
    assert isinstance(result.exception, UsageError), result.output
    assert result.exception.exit_code == 2
    assert result.exception.message == "unknown --output 'yaml'"
    assert result.exception.hint == "use one of text, json"


def test_ckpt_table_format_is_now_text() -> None:
    """ckpt called its text format "table"; one name for it everywhere now."""
    result = CliRunner().invoke(app, ["ckpt", "list", "d", "-o", "table"])
    assert isinstance(result.exception, UsageError) and result.exception.hint == "use one of text, json"


def test_lint_formats_are_the_reporters_formats() -> None:
    from berth.cli.lint_cmds import Format
    from berth.lint.output import FORMATS

    assert tuple(Format) == FORMATS
    assert "-f, -o, --format text|json|sarif|junit Output format: text, json, sarif or junit." in _help("lint")


def test_render_has_an_out_dir_and_no_output_format() -> None:
    text = _help("render")
    assert "--out-dir <path>" in text and " -o" not in text


def test_startup_loads_no_heavy_library() -> None:
    """`berth --version` and every command's option parsing must not import rich, pydantic, lightkube or YAML."""
    code = (
        "import sys; import berth.cli.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rich', 'pydantic', 'lightkube', 'yaml', 'ruamel', 'httpx', 'jsonschema', 'numpy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_cli_module_imports_private_names_of_another() -> None:
    import ast
    from pathlib import Path

    import berth.cli

    for path in Path(berth.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("berth.cli"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_down_json_keys_are_camel_case() -> None:
    from berth.kube.deletion import Removal

    removal = Removal("apps/v1", "StatefulSet", "t", "ns", delete=True, reason="created by berth up")
    assert removal.to_json() == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "t",
        "namespace": "ns",
        "delete": True,
        "reason": "created by berth up",
        "deleted": False,
    }
