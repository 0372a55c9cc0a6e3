"""Spec errors that point at the exact place in the user's file.

Every problem becomes one line ``file:line:col: field.path: message`` plus a hint,
the shape editors and CI annotators understand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from berth.errors import UsageError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where (field path, and line/col once located) and what to do."""

    path: Path
    message: str
    hint: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    @property
    def dotted(self) -> str:
        """``spec.volumes.model-storage.size`` / ``spec.command[2]``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "<document>"

    def format(self, filename: str) -> str:
        """The one-line form (plus an indented hint line)."""
        where = filename
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: {self.dotted}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_dict(self, filename: str) -> dict[str, Any]:
        """JSON form for ``-o json`` consumers."""
        return {
            "file": filename,
            "line": self.line,
            "column": self.column,
            "path": self.dotted,
            "message": self.message,
            "hint": self.hint,
        }


class SpecError(UsageError):
    """A spec that cannot be used; carries every issue found, each located in the file."""

    prefix = ""

    def __init__(self, filename: str, issues: Sequence[SpecIssue]) -> None:
        self.filename = filename
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.column or 0))
        count = len(self.issues)
        lines = [issue.format(filename) for issue in self.issues]
        if count > 1:
            lines.append(f"{count} problems in {filename}")
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        return self.message
