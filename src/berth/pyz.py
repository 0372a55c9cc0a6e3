"""A self-contained ``berth run`` for images without berth: a zipapp that needs only python3 (3.11+).

``spec.lifecycle.runner: inject`` (docs/lifecycle.md) renders it into a ConfigMap mounted into
the trainer's container, which runs ``python3 /berth-runner/berth.pyz run -- CMD``. It holds the
modules ``berth run`` imports (:data:`MODULES`, standard library only at import time), among them
:mod:`berth.runtime.preempt` and :mod:`berth.runtime.gang` for a trainer that puts the archive on
its ``PYTHONPATH``; nothing else of berth and no third-party package. This module reads them as
files and imports none of them (render may use it; the runtime is not render's to import). The
bytes are deterministic (sorted entries, fixed timestamps): rendering twice gives one ConfigMap.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

# What `berth run` imports, transitively (tests/runtime/test_lifecycle_zipapp.py runs the archive
# with `python3 -I -S`: a module missing here or a third-party import fails there).
MODULES = (
    "berth/__init__.py",
    "berth/contract.py",
    "berth/errors.py",
    "berth/rendezvous.py",
    "berth/runtime/__init__.py",
    "berth/runtime/agree.py",
    "berth/runtime/gang.py",
    "berth/runtime/kubeapi.py",
    "berth/runtime/launch.py",
    "berth/runtime/manifest.py",
    "berth/runtime/preempt.py",
    "berth/runtime/store.py",
    "berth/runtime/supervisor.py",
    "berth/runtime/zipapp.py",
)
MAIN = b"import sys\nfrom berth.runtime.zipapp import main\nsys.exit(main(sys.argv[1:]))\n"
SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: no build time in the bytes


def build() -> bytes:
    """The archive's bytes, from the berth next to this file."""
    root = Path(__file__).resolve().parent.parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("__main__.py", MAIN), *((m, (root / m).read_bytes()) for m in MODULES)]:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return SHEBANG + buf.getvalue()
