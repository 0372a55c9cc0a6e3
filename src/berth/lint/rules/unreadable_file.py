"""The file cannot be read, or its bytes are not the text they seem to be.

## What it does
Reports a path that does not exist or is not readable, a file over the 16 MiB limit, and a
file that is neither UTF-8 nor UTF-16 with a byte-order mark, at the first bad byte. A file in
Latin-1 or Windows-1252 is still linted as kubectl reads it (each invalid byte becomes
U+FFFD); text with NUL bytes and no byte-order mark (UTF-16 without a BOM) is not read, as
kubectl cannot read it either.

## Why is this bad?
Nothing in an unreadable file can be checked or applied, and a Latin-1 file is applied with its
accented letters replaced: a label value, a command or a config file in a ConfigMap is not
what its author wrote.

## Example
```yaml
# saved as Latin-1: "é" is the single byte 0xE9
data: {greeting: "café"}
```

Use instead:
```yaml
# saved as UTF-8 (or UTF-16 with a byte-order mark): "é" is 0xC3 0xA9
data: {greeting: "café"}
```

## Fix
Point `berth lint` at existing, readable files and save them as UTF-8
(`iconv -f latin1 -t utf-8`). `berth lint` exits with 2.
"""

from __future__ import annotations

from berth.lint.model import Severity
from berth.lint.rules import Rule

RULE = Rule(id="unreadable-file", severity=Severity.ERROR, doc=__doc__ or "")
