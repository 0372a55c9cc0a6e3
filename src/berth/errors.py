"""Errors meant for users: one clear line, a hint, an exit code; never a traceback."""

from __future__ import annotations


class BerthError(Exception):
    """An error the CLI prints as ``message`` plus ``hint`` and exits with ``exit_code``.

    Library code raises these for anything a user can fix (bad input, unreachable
    cluster, full disk); everything else is a bug and may surface as a traceback.
    """

    exit_code = 1
    prefix = "error: "  # cleared by errors whose lines already start with file:line:col

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(BerthError):
    """Bad input: a spec, a flag, a file. Exit code 2 like other CLI tools."""

    exit_code = 2
