"""The ``__main__`` of berth's zipapp (:mod:`berth.pyz` builds it): ``berth run`` without the CLI.

Images without berth get ``python3 berth.pyz run -- CMD`` (``spec.lifecycle.runner: inject``,
docs/lifecycle.md); the CLI's packages (typer, lightkube, pydantic) are not in the archive, so
this parses the one command ``berth run`` has and prints errors as the CLI does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = "usage: berth.pyz run [--dns-timeout SECONDS] -- COMMAND [ARGS...]"


def main(argv: Sequence[str]) -> int:
    """``berth.pyz run [--dns-timeout S] -- CMD``: what ``berth run`` does, without the CLI's packages."""
    from berth.errors import BerthError
    from berth.runtime.launch import run

    args = list(argv)
    if not args or args[0] != "run":
        print(USAGE, file=sys.stderr)
        return 2
    args.pop(0)
    dns_timeout = 600.0
    if args[:1] == ["--dns-timeout"] and len(args) > 1:
        try:
            dns_timeout = float(args[1])
        except ValueError:
            print(f"error: --dns-timeout {args[1]!r} is not a number of seconds\n{USAGE}", file=sys.stderr)
            return 2
        args = args[2:]
    if args[:1] == ["--"]:
        args.pop(0)
    try:
        return run(args, os.environ, dns_timeout=dns_timeout)
    except BerthError as err:
        print(f"{err.prefix}{err}", file=sys.stderr)
        return err.exit_code
