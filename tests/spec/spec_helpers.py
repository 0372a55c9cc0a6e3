"""Shared by the spec tests: where things are and the spec header."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
DATA = Path(__file__).resolve().parent / "data"

# Every bad spec in the tests is this header plus a few lines of ``spec:`` (line 5 on).
HEADER = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {name: t}
spec:
"""
