"""Schema validation and storage-aware rules for any Kubernetes manifests.

``lint_paths`` lints files and directories, ``lint_objects`` objects already in memory.
"""

from berth.lint.engine import LintOptions, LintResult, lint_objects, lint_paths

__all__ = ["LintOptions", "LintResult", "lint_objects", "lint_paths"]
