"""Where the control-plane binaries are, and building them with ``tools/kube/build.sh``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from berth.errors import BerthError

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """Default progress sink for library callers that do not want output."""


def cache_root() -> Path:
    """Where built binaries live (outside the repository): ``$BERTH_KUBE_CACHE`` or ~/.cache/berth/kube."""
    env = os.environ.get("BERTH_KUBE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "berth" / "kube"


def build_script() -> Path | None:
    """``tools/kube/build.sh`` of the source checkout berth runs from, if it runs from one."""
    script = Path(__file__).resolve().parents[3] / "tools" / "kube" / "build.sh"
    return script if script.is_file() else None


def build_hint() -> str:
    """How to get the binaries, for the error that says they are missing."""
    script = build_script()
    where = str(script) if script else "tools/kube/build.sh (in a berth source checkout)"
    return f"build them with {where} (several minutes cold, needs Go), or run `berth sandbox up --build`"


def find_bin_dir() -> Path | None:
    """The directory holding the built ``kube`` multi-call binary and its symlinks, if built.

    ``$BERTH_KUBE_BIN`` wins; otherwise the directory build.sh reports for the pinned versions;
    otherwise (berth installed without its source) the newest build in the cache.
    """
    env = os.environ.get("BERTH_KUBE_BIN")
    if env:
        return Path(env) if (Path(env) / "kube").is_file() else None
    script = build_script()
    if script:
        out = subprocess.run(["bash", str(script), "--print-bin-dir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            bin_dir = Path(out.stdout.strip())
            return bin_dir if (bin_dir / "kube").is_file() else None
    builds = sorted(cache_root().glob("*/bin/kube"), key=lambda p: p.stat().st_mtime, reverse=True)
    return builds[0].parent if builds else None


def build(progress: Progress = quiet) -> Path:
    """Run build.sh (a no-op when the binaries exist), streaming its progress lines."""
    script = build_script()
    if script is None:
        raise BerthError(
            "cannot build the control plane: berth is not running from a source checkout",
            hint="clone berth and run tools/kube/build.sh, or set BERTH_KUBE_BIN to a built bin directory",
        )
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    tail: list[str] = []
    for line in proc.stderr:
        progress(line.rstrip())
        tail = [*tail[-20:], line.rstrip()]
    out = proc.stdout.read().strip()
    if proc.wait() != 0:
        raise BerthError("building the control plane failed:\n" + "\n".join(tail), hint=f"rerun {script}")
    return Path(out.splitlines()[-1])


# ---- the sandbox's other built binaries (CoreDNS, kube-proxy): one build.sh each under tools/ ----


def checkout_script(*parts: str) -> Path | None:
    """A build script under ``tools/`` of the source checkout berth runs from, if it runs from one."""
    script = Path(__file__).resolve().parents[3].joinpath("tools", *parts)
    return script if script.is_file() else None


def built_binary(script: Path | None, env_var: str, name: str) -> Path | None:
    """``$ENV_VAR/NAME`` when that is set, else NAME in the directory ``SCRIPT --print-bin-dir`` names."""
    env = os.environ.get(env_var)
    if env:
        path = Path(env) / name
        return path if path.is_file() else None
    if script is None:
        return None
    out = subprocess.run(["bash", str(script), "--print-bin-dir"], capture_output=True, text=True, check=False)
    path = Path(out.stdout.strip()) / name
    return path if out.returncode == 0 and path.is_file() else None


def build_binary(script: Path | None, name: str, label: str, progress: Progress, hint: str) -> Path:
    """Run SCRIPT (a no-op when built) and return NAME in the bin directory it prints."""
    if script is None:
        raise BerthError(f"{label} is not built and berth is not running from a source checkout", hint=hint)
    progress(f"building {label} ({script})")
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        tail = "\n".join(out.stderr.splitlines()[-20:])
        raise BerthError(f"building {label} failed:\n{tail}", hint=f"rerun {script}")
    return Path(out.stdout.strip().splitlines()[-1]) / name
