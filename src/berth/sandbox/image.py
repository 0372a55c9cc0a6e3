"""berth's runtime image: Debian bookworm, python3, numpy and berth from this checkout, as an OCI image.

No registry and no Docker engine are needed: the root filesystem comes from Debian's packages
(``debootstrap --variant=minbase`` against the mirror this machine's apt uses), berth's other
runtime dependencies are pip-installed into it from wheels, and the image (one gzip'd layer, an
OCI config and manifest, an ``oci-layout`` archive) is written here with ``tarfile`` and
``hashlib``. Entries are sorted, mtimes fixed and owners numeric, so the layer depends only on
the files.

Builds are cached under ``~/.cache/berth/image/<hash>/`` by a hash of their inputs: the Debian
suite, mirror, package set and the suite's index as this machine's apt last fetched it; the pinned
Python wheels; berth's source tree. An unchanged input set is a cache hit (no build). The
reference is ``berth.local/runtime:<berth version>-<hash>``; pods use it with
``imagePullPolicy: Never`` once :func:`import_image` put it into the sandbox's containerd
(namespace ``k8s.io``). :func:`ensure_runtime_image` does both for ``sandbox up --kubelet``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from berth import __version__
from berth.errors import BerthError

Progress = Callable[[str], None]

IMAGE_NAME = "berth.local/runtime"
SUITE = "bookworm"
PYTHON_VERSION = "3.11"  # bookworm's python3
DEBIAN_PACKAGES = ("python3", "python3-numpy")
"""Installed on top of minbase (dash, coreutils, libc-bin's getent): the interpreter and numpy."""

DROPPED_PACKAGES = (
    "apt",
    "libapt-pkg6.0",
    "debian-archive-keyring",
    "gpgv",
    "e2fsprogs",
    "libext2fs2",
    "libss2",
    "logsave",
    "perl-base",
)
"""minbase packages a runtime image does not use (no package manager runs in it): files and status removed."""

PIP_PACKAGES = ("typer", "prometheus-client", "boto3", "zlib-ng")
"""berth's runtime dependencies not taken from Debian (bookworm's are older than pyproject.toml asks, or
missing): pinned with their dependencies to the versions installed next to the running berth."""

FROM_DEBIAN = frozenset({"numpy"})
"""Python distributions the image takes from Debian's packages, never from pip."""

UID = 1000
USER = "berth"
HOME = f"/home/{USER}"
SITE = f"/usr/local/lib/python{PYTHON_VERSION}/dist-packages"  # on Debian python3's sys.path
ENV = (
    "PATH=/usr/local/bin:/usr/bin:/bin",
    f"HOME={HOME}",
    "LANG=C.UTF-8",
    "PYTHONUNBUFFERED=1",
)
EPOCH = 0
"""Every entry's mtime: the layer depends on content only. The .pyc files are checked-hash (PEP 552), so
fixed source mtimes never make Python recompile."""

KEEP_CACHED = 3
"""Builds kept in the cache (newest first); older ones are removed after a new build."""

_PRUNE = (
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/linda",
    "usr/share/bug",
    "usr/share/menu",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/ldconfig",
    "var/log",
    "etc/apt/sources.list",
    "etc/apt/sources.list.d",
    "debootstrap",
)
_EMPTY_FILES = ("etc/hostname", "etc/resolv.conf", "etc/machine-id")
"""Host details debootstrap copies in; the runtime mounts its own over them."""

_NO_CONTENT = ("dev", "proc", "sys", "run", "tmp")
"""Directories the layer keeps empty: the runtime mounts over them."""


class ImageError(BerthError):
    """The image cannot be built or imported here (a missing tool, a failed step); exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class Inputs:
    """Everything a build depends on; :attr:`key` is their hash."""

    suite: str
    mirror: str
    debian_packages: tuple[str, ...]
    dropped_packages: tuple[str, ...]
    debian_index: str
    python_pins: tuple[str, ...]
    source: str
    layout: int = 2  # bump when this module changes what the Debian rootfs holds (its cache key)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def debian_key(self) -> str:
        """The hash of the Debian part alone: the base rootfs is cached by it (a berth change reuses it)."""
        part = [self.suite, self.mirror, self.debian_packages, self.dropped_packages, self.debian_index, self.layout]
        return hashlib.sha256(json.dumps(part).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RuntimeImage:
    """A built (or cached) image: its reference, its manifest digest and the OCI archive ``ctr`` imports."""

    reference: str
    digest: str
    archive: Path
    size_bytes: int
    unpacked_bytes: int
    cached: bool
    debian: dict[str, str] = field(default_factory=dict)
    python: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "cached": self.cached,
            "sizeBytes": self.size_bytes,
            "unpackedBytes": self.unpacked_bytes,
            "archive": str(self.archive),
        }


def cache_root() -> Path:
    """``$BERTH_IMAGE_CACHE`` or ``$XDG_CACHE_HOME/berth/image`` (``~/.cache/berth/image``)."""
    env = os.environ.get("BERTH_IMAGE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "berth" / "image"


# --- inputs -------------------------------------------------------------------------------------


def checkout_root() -> Path:
    """The checkout the running berth comes from (``pyproject.toml`` next to ``src/berth``)."""
    here = Path(__file__).resolve().parents[1]  # src/berth
    root = here.parents[1]
    if here.parent.name != "src" or not (root / "pyproject.toml").is_file():
        raise ImageError(
            f"berth at {here} is not a checkout: the image installs berth from its source tree",
            hint="run `berth sandbox image` from an editable install (pip install -e .) of the repository",
        )
    return root


def source_files(root: Path) -> list[Path]:
    """The files berth's wheel is built from, relative to ``root``: pyproject.toml, README.md, src/berth."""
    files = [Path("pyproject.toml")] + ([Path("README.md")] if (root / "README.md").is_file() else [])
    for dirpath, dirnames, filenames in os.walk(root / "src" / "berth"):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                files.append((Path(dirpath) / name).relative_to(root))
    return files


def source_hash(root: Path) -> str:
    """sha256 over the relative path, mode bit x and content of every :func:`source_files` entry."""
    digest = hashlib.sha256()
    for rel in source_files(root):
        path = root / rel
        digest.update(f"{rel.as_posix()}\0{os.stat(path).st_mode & 0o111:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses for ``SUITE`` (deb822 or one-line sources in /etc/apt)."""
    stanzas: list[tuple[list[str], list[str], list[str]]] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            stanzas.append(
                (fields.get("types", "").split(), fields.get("uris", "").split(), fields.get("suites", "").split())
            )
    for path in [Path("/etc/apt/sources.list"), *(sorted(sources.glob("*.list")) if sources.is_dir() else [])]:
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3:
                    stanzas.append(([words[0]], [words[1]], [words[2]]))
    for types, uris, suites in stanzas:
        if "deb" in types and SUITE in suites and uris:
            return uris[0].rstrip("/")
    raise ImageError(
        f"no Debian {SUITE} mirror in /etc/apt's sources",
        hint=f"the image is built from the {SUITE} packages the apt sources of this machine name",
    )


def debian_index(mirror: str) -> str:
    """sha256 of the suite's InRelease as apt last fetched it (a new point release changes it), or ''."""
    lists = Path("/var/lib/apt/lists")
    host_path = re.sub(r"^[a-z]+://", "", mirror).replace("/", "_")
    candidate = lists / f"{host_path}_dists_{SUITE}_InRelease"
    if candidate.is_file():
        return hashlib.sha256(candidate.read_bytes()).hexdigest()
    return ""


def python_pins(names: Iterable[str] = PIP_PACKAGES) -> tuple[str, ...]:
    """``name==version`` for ``names`` and everything they require, as installed next to the running berth.

    The image gets the versions berth's own tests run against. Requirements behind extras are not
    followed; those with other markers are, when installed. Distributions in :data:`FROM_DEBIAN` are left out.
    """
    from importlib import metadata

    pins: dict[str, str] = {}
    todo = [n for n in names]
    while todo:
        name = _canonical(todo.pop())
        if name in pins or name in FROM_DEBIAN:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in {_canonical(n) for n in names}:
                raise ImageError(
                    f"berth's runtime dependency {name} is not installed here, so its version cannot be pinned",
                    hint="pip install -e . (the image pins the versions berth runs with)",
                ) from None
            continue  # a marker-only requirement (another Python, another platform)
        pins[name] = dist.version
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if "extra" in marker:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if match:
                todo.append(match.group(1))
    return tuple(f"{n}=={v}" for n, v in sorted(pins.items()))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def debian_inputs() -> Inputs:
    """The Debian inputs alone (no pins, no source): the stock image's, and the base of :func:`inputs`."""
    mirror = apt_mirror()
    return Inputs(
        suite=SUITE,
        mirror=mirror,
        debian_packages=DEBIAN_PACKAGES,
        dropped_packages=DROPPED_PACKAGES,
        debian_index=debian_index(mirror),
        python_pins=(),
        source="",
    )


def inputs(source_root: Path | None = None) -> Inputs:
    """The current inputs (mirror and index from /etc/apt and /var/lib/apt, pins, source tree)."""
    root = source_root or checkout_root()
    return replace(debian_inputs(), python_pins=python_pins(), source=source_hash(root))


def reference_for(key: str) -> str:
    return f"{IMAGE_NAME}:{__version__}-{key}"


# --- build --------------------------------------------------------------------------------------


def cached_image(key: str, root: Path | None = None, archive_name: str = "runtime.oci.tar") -> RuntimeImage | None:
    """The cached build of ``key`` if its archive and metadata are complete, else None."""
    entry = (root or cache_root()) / key
    meta_path, archive = entry / "image.json", entry / archive_name
    if not (meta_path.is_file() and archive.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        return RuntimeImage(
            reference=meta["reference"],
            digest=meta["digest"],
            archive=archive,
            size_bytes=int(meta["sizeBytes"]),
            unpacked_bytes=int(meta["unpackedBytes"]),
            cached=True,
            debian=dict(meta.get("debian", {})),
            python=list(meta.get("python", [])),
        )
    except (ValueError, KeyError, TypeError):
        return None


def build_image(
    *,
    progress: Progress | None = None,
    rebuild: bool = False,
    cache: Path | None = None,
    source_root: Path | None = None,
) -> RuntimeImage:
    """The runtime image for the current inputs: from the cache, or built (minutes) and cached."""
    say = progress or (lambda _m: None)
    root = source_root or checkout_root()
    wanted = inputs(root)
    key = wanted.key
    cache = cache or cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not rebuild:
            hit = cached_image(key, cache)
            if hit is not None:
                say(f"cached: {hit.reference} ({cache / key})")
                return hit
        _check_tools()
        for stale in [*cache.glob("build-*"), *cache.glob("base-*-*")]:  # a killed build's (we hold the lock)
            _remove_tree(stale)
        started = time.monotonic()
        base = _base_rootfs(cache, wanted, say)
        work = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=cache))
        try:
            rootfs = work / "rootfs"
            _run(["cp", "-a", "--reflink=auto", str(base / "rootfs"), str(rootfs)], "copying the Debian rootfs")
            debian = json.loads((base / "debian.json").read_text())
            _pip_install(rootfs, wanted.python_pins, root, work, say)
            _compile(rootfs, [SITE], say)
            say("writing the OCI image (one gzip'd layer)")
            image = write_oci(rootfs, work / "runtime.oci.tar", reference_for(key), wanted)
            entry = cache / key
            if entry.exists():
                shutil.rmtree(entry)
            entry.mkdir()
            archive = entry / "runtime.oci.tar"
            os.replace(image.archive, archive)
            meta = {
                **image.to_json(),
                "archive": str(archive),
                "cached": True,
                "debian": debian,
                "python": list(wanted.python_pins),
                "inputs": asdict(wanted),
                "buildSeconds": round(time.monotonic() - started, 1),
            }
            (entry / "image.json.tmp").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            os.replace(entry / "image.json.tmp", entry / "image.json")
        finally:
            _remove_tree(work)
        _evict(cache, keep=key)
        say(f"built {image.reference} in {time.monotonic() - started:.0f}s: {_mib(image.size_bytes)} compressed")
        return RuntimeImage(
            reference=image.reference,
            digest=image.digest,
            archive=archive,
            size_bytes=image.size_bytes,
            unpacked_bytes=image.unpacked_bytes,
            cached=False,
            debian=debian,
            python=list(wanted.python_pins),
        )


def _base_rootfs(cache: Path, wanted: Inputs, say: Progress) -> Path:
    """``cache/base-<debian key>/``: the pruned, byte-compiled Debian rootfs with the user, built once per key."""
    base = cache / f"base-{wanted.debian_key}"
    if (base / "debian.json").is_file():
        say(f"Debian rootfs cached ({base})")
        return base
    _remove_tree(base)
    work = Path(tempfile.mkdtemp(prefix=f"base-{wanted.debian_key}-", dir=cache))
    try:
        rootfs = work / "rootfs"
        _debootstrap(rootfs, wanted.mirror, cache / "debs", say)
        debian = _installed_packages(rootfs)
        _drop_packages(rootfs, DROPPED_PACKAGES, say)
        _add_user(rootfs)
        _prune(rootfs)
        _compile(rootfs, [f"/usr/lib/python{PYTHON_VERSION}", "/usr/lib/python3/dist-packages"], say)
        kept = {name: version for name, version in debian.items() if name not in DROPPED_PACKAGES}
        (work / "debian.json").write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
        os.replace(work, base)
    finally:
        _remove_tree(work)
    for old in cache.glob("base-*"):
        if old != base and old.is_dir() and (old / "debian.json").is_file():
            shutil.rmtree(old, ignore_errors=True)  # one Debian rootfs at a time (about 150 MiB)
    return base


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise ImageError(
            "building the runtime image needs root (debootstrap installs Debian's packages in a chroot)",
            hint="run it as root, or import a cached build",
        )
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux"), ("chroot", "coreutils")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise ImageError(f"{tool} is not installed", hint=f"apt-get install {package}")


def _run(cmd: list[str], what: str, *, say: Progress | None = None, env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` niced; stream debootstrap's phase changes to ``say``; on failure one line, the log in /tmp."""
    proc = subprocess.Popen(
        ["nice", "-n", "10", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    phase = ""
    for line in proc.stdout:
        line = line.rstrip()
        lines.append(line)
        if say and line.startswith("I: "):
            word = line[3:].split(" ", 1)[0].replace("Validating", "Retrieving")
            if word != phase:
                phase = word
                say(f"{what}: {line[3:]}")
    if proc.wait() != 0:
        with tempfile.NamedTemporaryFile("w", prefix="berth-image-", suffix=".log", delete=False) as log:
            log.write(f"$ {' '.join(cmd)}\n" + "\n".join(lines) + "\n")
        errors = [ln for ln in lines if ln.startswith(("E: ", "ERROR: ", "error: ", "W: Failure"))]
        reason = (errors or [ln for ln in lines if ln.strip()] or ["no output"])[-1]
        raise ImageError(f"{what} failed (exit {proc.returncode}): {reason.strip()}", hint=f"its output: {log.name}")


def _debootstrap(rootfs: Path, mirror: str, debs: Path, say: Progress) -> None:
    """minbase + DEBIAN_PACKAGES, in a private mount namespace: its /proc and /sys mounts die with it."""
    debs.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap --variant=minbase {SUITE} + {', '.join(DEBIAN_PACKAGES)} (about 2 minutes; .debs cached)")
    _run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            f"--cache-dir={debs}",
            SUITE,
            str(rootfs),
            mirror,
        ],
        "debootstrap",
        say=say,
    )


def _installed_packages(rootfs: Path) -> dict[str, str]:
    """Package → version from the rootfs' dpkg status (installed ones)."""
    out: dict[str, str] = {}
    for block in (rootfs / "var/lib/dpkg/status").read_text().split("\n\n"):
        if _field(block, "Status").endswith(" installed") and _field(block, "Package"):
            out[_field(block, "Package")] = _field(block, "Version")
    return dict(sorted(out.items()))


def _drop_packages(rootfs: Path, names: Iterable[str], say: Progress) -> None:
    """Remove ``names``' files (per dpkg's lists) and their status entries: no maintainer scripts run."""
    info = rootfs / "var/lib/dpkg/info"
    names = set(names)
    dropped = []
    for name in sorted(names):
        lists = [p for p in (info / f"{name}.list", *info.glob(f"{name}:*.list")) if p.is_file()]
        if not lists:
            continue
        for entry in lists[0].read_text().splitlines():
            path = rootfs / entry.lstrip("/")
            if not path.is_dir() and (path.is_symlink() or path.is_file()):  # never /bin, /lib64 (usrmerge links)
                path.unlink()
        for leftover in info.glob(f"{name}[.:]*"):
            leftover.unlink()
        dropped.append(name)
    status = rootfs / "var/lib/dpkg/status"
    blocks = status.read_text().strip("\n").split("\n\n")
    kept = [b for b in blocks if _field(b, "Package") not in names]
    status.write_text("\n\n".join(kept) + "\n")
    say(f"dropped {len(dropped)} packages a runtime image does not use ({', '.join(dropped)})")


def _field(block: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", block, re.M)
    return match.group(1) if match else ""


def _pip_install(rootfs: Path, pins: tuple[str, ...], source: Path, work: Path, say: Progress) -> None:
    """Wheels for bookworm's CPython into /usr/local (on its sys.path); berth's wheel from a copy of ``source``."""
    target = rootfs / SITE.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[os.uname().machine]
    platform = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for tag in ("manylinux_2_36", "manylinux_2_28", "manylinux_2_17", "manylinux2014", "linux"):
        platform += ["--platform", f"{tag}_{arch}"]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    say(f"pip: {len(pins)} wheels ({', '.join(p.split('==')[0] for p in pins)})")
    _run([*pip, "install", "--no-deps", "--no-compile", "--target", str(target), *platform, *pins], "pip install")
    say(f"pip: berth {__version__} from {source}")
    copy = work / "berth-src"
    for rel in source_files(source):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, copy / rel)
    wheels = work / "wheels"
    _run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(copy)], "building berth's wheel")
    built = sorted(wheels.glob("berth-*.whl"))
    _run(
        [*pip, "install", "--no-deps", "--no-compile", "--target", str(target), *platform, str(built[0])],
        "pip install berth",
    )
    shutil.rmtree(target / "bin", ignore_errors=True)  # scripts with this machine's interpreter in their #!
    for direct_url in target.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()  # names the build's temporary wheel path: the layer would differ per build
    for record in target.glob("*.dist-info/RECORD"):
        _drop_missing_from_record(record)
    script = rootfs / "usr/local/bin/berth"
    script.parent.mkdir(parents=True, exist_ok=True)
    # The console entry point pyproject.toml names: `berth stage` (datasets) starts without typer.
    script.write_text("#!/usr/bin/python3\nimport sys\n\nfrom berth.cli.entry import main\n\nsys.exit(main())\n")
    script.chmod(0o755)


def _drop_missing_from_record(record: Path) -> None:
    """Rewrite a wheel's RECORD without the files the build removed (scripts, direct_url.json).

    Their hashes name the building venv's interpreter and the temporary wheel path, so leaving them listed
    would make the layer differ between two checkouts of the same source.
    """
    site = record.parent.parent
    own = f"{record.parent.name}/RECORD"
    rows = [row for row in csv.reader(record.read_text().splitlines()) if row]
    kept = [row for row in rows if row[0] == own or (site / row[0]).exists()]
    if kept != rows:
        with record.open("w", newline="") as out:
            csv.writer(out, lineterminator="\n").writerows(kept)


def _add_user(rootfs: Path) -> None:
    """uid/gid 1000 ``berth`` with a home directory (the specs' runAsUser)."""
    with open(rootfs / "etc/passwd", "a") as f:
        f.write(f"{USER}:x:{UID}:{UID}::{HOME}:/bin/sh\n")
    with open(rootfs / "etc/group", "a") as f:
        f.write(f"{USER}:x:{UID}:\n")
    shadow = rootfs / "etc/shadow"
    if shadow.exists():
        with open(shadow, "a") as f:
            f.write(f"{USER}:!:::::::\n")
        # the day of the build in every entry's last-change field: empty (no aging; all accounts locked)
        entries = [line.split(":") for line in shadow.read_text().splitlines()]
        shadow.write_text("".join(":".join([*e[:2], "", *e[3:]]) + "\n" for e in entries if len(e) > 2))
    for backup in ("passwd-", "group-", "shadow-", "gshadow-"):
        (rootfs / "etc" / backup).unlink(missing_ok=True)
    home = rootfs / HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, UID, UID)
    home.chmod(0o755)


def _prune(rootfs: Path) -> None:
    """Drop docs (keeping copyright files), man pages, locales, apt's lists and caches, logs, host files."""
    for rel in _PRUNE:
        _remove_tree(rootfs / rel)
    doc = rootfs / "usr/share/doc"
    if doc.is_dir():
        for package in doc.iterdir():
            if package.is_dir() and not package.is_symlink():
                for item in package.iterdir():
                    if item.name != "copyright":
                        _remove_tree(item)
    for rel in _EMPTY_FILES:
        path = rootfs / rel
        if path.exists() or path.is_symlink():
            path.unlink()
        path.write_text("")
    for rel in ("var/log", "var/cache/apt", "var/lib/apt/lists"):
        (rootfs / rel).mkdir(parents=True, exist_ok=True)
    for old in (rootfs / "var/lib/dpkg").glob("*-old"):
        old.unlink()
    for old in (rootfs / "var/cache/debconf").glob("*-old"):
        old.unlink()
    for pycache in list(rootfs.glob("usr/**/__pycache__")):
        shutil.rmtree(pycache)


def _compile(rootfs: Path, dirs: list[str], say: Progress) -> None:
    """Byte-compile ``dirs`` with the image's own python3: checked-hash .pyc, valid under the layer's fixed mtimes."""
    say(f"compiling .pyc (checked-hash) in {', '.join(dirs)} with the image's python3")
    _run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3",
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "checked-hash",
            *dirs,
        ],
        "compileall",
        env={"SOURCE_DATE_EPOCH": str(EPOCH)},
    )


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _evict(cache: Path, keep: str) -> None:
    """Keep the newest KEEP_CACHED builds; drop older ones and stale build directories."""
    entries = sorted(
        (p for p in cache.iterdir() if p.is_dir() and (p / "image.json").is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[KEEP_CACHED:]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# --- the OCI image ------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)


def _entries(rootfs: Path) -> Iterator[tuple[Path, str]]:
    """(path, arcname) depth-first with each directory's children sorted by name; runtime mounts kept empty."""

    def walk(directory: Path, prefix: str) -> Iterator[tuple[Path, str]]:
        for child in sorted(os.listdir(directory)):
            path = directory / child
            arcname = f"{prefix}{child}"
            yield path, arcname
            if path.is_dir() and not path.is_symlink() and arcname not in _NO_CONTENT:
                yield from walk(path, f"{arcname}/")

    yield from walk(rootfs, "")


def write_layer(rootfs: Path, sink: IO[bytes]) -> tuple[str, str, int, int]:
    """Write ``rootfs`` as a gzip'd tar to ``sink``; (diff_id, digest, compressed size, uncompressed size)."""
    compressed = _Hashing(sink)
    from zlib_ng import gzip_ng  # a berth dependency: several times faster than zlib, the same format

    with gzip_ng.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=EPOCH, compresslevel=6) as gz:  # type: ignore[no-untyped-call]
        plain = _Hashing(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            links: dict[tuple[int, int], str] = {}
            for path, arcname in _entries(rootfs):
                st = path.lstat()
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    continue  # device nodes, sockets, fifos: the runtime provides /dev
                info = tarfile.TarInfo(arcname)
                info.mode = stat.S_IMODE(st.st_mode)
                info.uid, info.gid = st.st_uid, st.st_gid
                info.uname = info.gname = ""
                info.mtime = EPOCH
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(path)
                    tar.addfile(info)
                elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                    info.type = tarfile.LNKTYPE
                    info.linkname = links[(st.st_dev, st.st_ino)]
                    tar.addfile(info)
                else:
                    if st.st_nlink > 1:
                        links[(st.st_dev, st.st_ino)] = arcname
                    info.size = st.st_size
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
    return f"sha256:{plain.sha.hexdigest()}", f"sha256:{compressed.sha.hexdigest()}", compressed.size, plain.size


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_oci(
    rootfs: Path,
    archive: Path,
    reference: str,
    wanted: Inputs,
    *,
    image_config: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> RuntimeImage:
    """An ``oci-layout`` archive (oci-layout, index.json, blobs/sha256/…) of ``rootfs`` as one layer.

    ``image_config`` (the OCI ``config``: user, env, cmd, labels) and ``created_by`` default to
    the runtime image's; the stock image (:func:`build_stock_image`) passes its own.
    """
    layer_path = archive.with_suffix(".layer")
    with open(layer_path, "wb") as f:
        diff_id, layer_digest, layer_size, unpacked = write_layer(rootfs, f)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": image_config
        or {
            "User": f"{UID}:{UID}",
            "Env": list(ENV),
            "Cmd": ["python3"],
            "WorkingDir": HOME,
            "Labels": {
                "org.opencontainers.image.title": "berth runtime",
                "org.opencontainers.image.version": __version__,
                "dev.berth.image.inputs": wanted.key,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {
                "created": created,
                "created_by": created_by
                or f"berth sandbox image: debootstrap --variant=minbase {SUITE} "
                f"+{','.join(DEBIAN_PACKAGES)}; pip {len(wanted.python_pins)} wheels; berth {__version__}",
            }
        ],
    }
    config_digest, config_bytes = _blob(_canonical_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}
        ],
    }
    manifest_digest, manifest_bytes = _blob(_canonical_json(manifest))
    tag = reference.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }

    def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, path: Path | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.mtime, info.mode, info.uid, info.gid = EPOCH, 0o644, 0, 0
        if data is None and path is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        elif data is not None:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            assert path is not None
            info.size = path.stat().st_size
            with open(path, "rb") as f:
                tar.addfile(info, f)

    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "blobs")
        add(tar, "blobs/sha256")
        for digest, data in sorted([(config_digest, config_bytes), (manifest_digest, manifest_bytes)]):
            add(tar, f"blobs/sha256/{digest.split(':')[1]}", data)
        add(tar, f"blobs/sha256/{layer_digest.split(':')[1]}", path=layer_path)
        add(tar, "index.json", _canonical_json(index))
        add(tar, "oci-layout", _canonical_json({"imageLayoutVersion": "1.0.0"}))
    layer_path.unlink()
    return RuntimeImage(
        reference=reference,
        digest=manifest_digest,
        archive=archive,
        size_bytes=layer_size + len(config_bytes) + len(manifest_bytes),
        unpacked_bytes=unpacked,
        cached=False,
    )


# --- the stock image -------------------------------------------------------------------------------

STOCK_IMAGE_NAME = "berth.local/python-stock"
STOCK_LAYOUT = 1  # bump when what the stock image holds or its config changes (its cache key)
STOCK_ARCHIVE = "python-stock.oci.tar"


def stock_key(wanted: Inputs) -> str:
    return hashlib.sha256(f"{wanted.debian_key}/{STOCK_LAYOUT}".encode()).hexdigest()[:16]


def build_stock_image(
    *, progress: Progress | None = None, rebuild: bool = False, cache: Path | None = None
) -> RuntimeImage:
    """A "stock python" image: the runtime image's Debian rootfs (minbase, python3 and Debian's
    numpy) without berth or any pip package, as ``berth.local/python-stock:<key>``.

    What a user's image without berth looks like, for ``lifecycle.runner: inject`` in real pods
    (docs/lifecycle.md). It shares the runtime image's cached base rootfs (one debootstrap for
    both) and is cached under ``<cache>/stock/<key>/`` by the Debian inputs alone, so a change to
    berth never rebuilds it. Root user, no ``PYTHONUNBUFFERED``: as a stock image ships.
    """
    say = progress or (lambda _m: None)
    wanted = debian_inputs()
    key = stock_key(wanted)
    cache = cache or cache_root()
    stock = cache / "stock"
    stock.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if not rebuild:
            hit = cached_image(key, stock, STOCK_ARCHIVE)
            if hit is not None:
                say(f"cached: {hit.reference} ({stock / key})")
                return hit
        if not (cache / f"base-{wanted.debian_key}" / "debian.json").is_file():
            _check_tools()
        started = time.monotonic()
        base = _base_rootfs(cache, wanted, say)
        entry = stock / key
        _remove_tree(entry)
        work = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=stock))
        try:
            say("writing the stock python image (the Debian rootfs alone, one gzip'd layer)")
            reference = f"{STOCK_IMAGE_NAME}:{key}"
            config = {
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
                "Cmd": ["python3"],
                "Labels": {"org.opencontainers.image.title": "python3 (Debian, no berth)"},
            }
            image = write_oci(
                base / "rootfs",
                work / STOCK_ARCHIVE,
                reference,
                wanted,
                image_config=config,
                created_by=f"berth sandbox image --stock: debootstrap --variant=minbase {SUITE} "
                f"+{','.join(DEBIAN_PACKAGES)}",
            )
            debian = json.loads((base / "debian.json").read_text())
            meta = {
                **image.to_json(),
                "archive": str(entry / STOCK_ARCHIVE),
                "cached": True,
                "debian": debian,
                "python": [],
                "buildSeconds": round(time.monotonic() - started, 1),
            }
            (work / "image.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            os.replace(work, entry)
        finally:
            _remove_tree(work)
        for old in stock.iterdir():
            if old != entry:
                _remove_tree(old)  # one stock image at a time (about 60 MiB)
        say(f"built {reference} in {time.monotonic() - started:.0f}s: {_mib(image.size_bytes)} compressed")
        return RuntimeImage(
            reference=reference,
            digest=image.digest,
            archive=entry / STOCK_ARCHIVE,
            size_bytes=image.size_bytes,
            unpacked_bytes=image.unpacked_bytes,
            cached=False,
            debian=debian,
        )


# --- containerd -----------------------------------------------------------------------------------

NAMESPACE = "k8s.io"


def find_containerd_sockets(state_dir: Path) -> list[Path]:
    """The containerd sockets of a sandbox's real nodes (``nodes/node-N/containerd.sock``) that answer."""
    if not state_dir.is_dir():
        return []
    return [p for p in sorted(state_dir.glob("nodes/*/containerd.sock")) if p.is_socket() and _answers(p)]


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _ctr(containerd_socket: Path | str, *args: str, timeout: float = 300) -> str:
    ctr = shutil.which("ctr")
    if ctr is None:
        raise ImageError("ctr is not installed (containerd's client)", hint="apt-get install containerd")
    try:
        done = subprocess.run(
            [ctr, "--address", str(containerd_socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ImageError(f"ctr {' '.join(args[:2])} did not finish in {timeout:.0f}s ({containerd_socket})") from None
    if done.returncode != 0:
        raise ImageError(f"ctr {' '.join(args[:2])} failed on {containerd_socket}: {done.stderr.strip()}")
    return done.stdout


def imported_images(containerd_socket: Path | str) -> dict[str, str]:
    """reference → manifest digest of the images in containerd's ``k8s.io`` namespace."""
    out: dict[str, str] = {}
    for line in _ctr(containerd_socket, "images", "ls").splitlines()[1:]:
        words = line.split()
        if len(words) >= 3:
            out[words[0]] = words[2]
    return out


def import_image(image: RuntimeImage, containerd_socket: Path | str, progress: Progress | None = None) -> bool:
    """Import ``image`` into containerd (namespace k8s.io, unpacked); False when it was already there."""
    if imported_images(containerd_socket).get(image.reference) == image.digest:
        if progress:
            progress(f"containerd already has {image.reference}")
        return False
    if progress:
        progress(f"importing {image.reference} into containerd ({containerd_socket}, namespace {NAMESPACE})")
    _ctr(containerd_socket, "images", "import", "--snapshotter", "overlayfs", str(image.archive))
    found = imported_images(containerd_socket).get(image.reference)
    if found != image.digest:
        raise ImageError(f"containerd lists {image.reference} as {found}, not {image.digest} after the import")
    return True


def ensure_runtime_image(
    containerd_socket: Path | str | Sequence[Path | str] | None,
    progress: Progress | None = None,
    *,
    source_root: Path | None = None,
) -> str:
    """Build or reuse the runtime image and import it into each containerd socket given; its reference.

    ``None`` (or no sockets) builds and caches only. For ``sandbox up --kubelet``: one socket per real node.
    """
    image = build_image(progress=progress, source_root=source_root)
    if containerd_socket is None:
        sockets: Sequence[Path | str] = []
    elif isinstance(containerd_socket, (str, Path)):
        sockets = [containerd_socket]
    else:
        sockets = containerd_socket
    for sock in sockets:
        import_image(image, sock, progress)
    return image.reference
