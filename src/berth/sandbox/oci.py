"""OCI image archives written here, without a registry, and the sandbox's pause image.

:func:`write_image` packs files into a one-layer OCI image layout tarball that
``ctr images import`` reads (the image name is the ``io.containerd.image.name`` annotation).
The archive is reproducible: fixed mtimes and owners, so the same files give the same digest.

The pause image (the pod sandbox every pod's containers join) is a 20-line C program built
with ``gcc -static``: it sleeps until SIGTERM/SIGINT and reaps zombies, like Kubernetes' own.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError

PAUSE_SOURCE = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction term = {0}, chld = {0};
    term.sa_handler = stop;
    chld.sa_handler = reap;
    chld.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGCHLD, &chld, NULL);
    for (;;) pause();
}
"""
PAUSE_REPO = "berth.local/pause"


@dataclass(frozen=True)
class ImageFile:
    """One file of an image layer."""

    path: str  # inside the image, without the leading slash
    data: bytes
    mode: int = 0o755


def _tar_bytes(files: list[ImageFile]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(f.path).parent) for f in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for f in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(f.path)
            info.size = len(f.data)
            info.mode = f.mode
            tar.addfile(info, io.BytesIO(f.data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_image(out: Path, name: str, files: list[ImageFile], entrypoint: list[str]) -> str:
    """Write an OCI image layout tarball of FILES named NAME to OUT; return the manifest digest."""
    layer = _tar_bytes(files)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer), "size": len(layer)}
            ],
        },
        sort_keys=True,
    ).encode()
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": index,
        **{f"blobs/sha256/{_digest(b)[7:]}": b for b in (layer, config, manifest)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data in entries.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return _digest(manifest)


def pause_image(cache: Path) -> tuple[str, Path]:
    """The pause image's name and archive, built (gcc -static) into CACHE when missing."""
    tag = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:12]
    name = f"{PAUSE_REPO}:{tag}"
    archive = cache / f"pause-{tag}.tar"
    if archive.is_file():
        return name, archive
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BerthError("gcc is missing: it builds the pause image", hint="apt-get install gcc libc6-dev")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "pause.c"
        src.write_text(PAUSE_SOURCE)
        binary = Path(tmp) / "pause"
        out = subprocess.run(
            [gcc, "-static", "-Os", "-s", "-o", str(binary), str(src)], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise BerthError(
                f"building the pause image failed (gcc -static): {out.stderr.strip()}",
                hint="apt-get install libc6-dev (static libc)",
            )
        write_image(archive, name, [ImageFile("pause", binary.read_bytes())], ["/pause"])
    return name, archive
