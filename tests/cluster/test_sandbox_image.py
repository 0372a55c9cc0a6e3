"""berth's runtime image (`berth sandbox image`): built from Debian's packages here, checked as an OCI
archive, run as a real container under runc (uid 1000) and under a private containerd.

The build uses the real cache (~/.cache/berth/image, or $BERTH_IMAGE_CACHE): a cold build takes about two
minutes, later runs reuse it. Skips when debootstrap cannot run here (not root, not installed) unless
BERTH_REQUIRE_KUBELET=1, as in CI.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import berth
from berth.sandbox import image as img

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "debootstrap needs root"
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return (
                f"{tool} is not installed (apt-get install {'debootstrap' if tool == 'debootstrap' else 'util-linux'})"
            )
    try:
        img.apt_mirror()
    except img.ImageError as err:
        return err.message
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("BERTH_REQUIRE_KUBELET"):
        pytest.fail(f"BERTH_REQUIRE_KUBELET is set but {reason}")
    pytest.skip(reason)


def _progress(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def _snapshot(dest: Path, origin: Path = REPO) -> Path:
    """A copy of the files the image is built from: other edits to the checkout cannot move the key mid-test."""
    for rel in img.source_files(origin):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _snapshot(tmp_path_factory.mktemp("image-src") / "checkout")


@pytest.fixture(scope="module")
def built(source: Path) -> img.RuntimeImage:
    reason = _missing()
    if reason:
        _skip_or_fail(reason)
    return img.build_image(progress=_progress, source_root=source)


@pytest.fixture(scope="module")
def layout(built: img.RuntimeImage) -> dict[str, bytes]:
    """The archive's members: name → bytes."""
    with tarfile.open(built.archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _blob(layout: dict[str, bytes], digest: str) -> bytes:
    algo, hexdigest = digest.split(":")
    assert algo == "sha256"
    return layout[f"blobs/sha256/{hexdigest}"]


def _manifest_config_layer(layout: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    index = json.loads(layout["index.json"])
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    return manifest, config, _blob(layout, manifest["layers"][0]["digest"])


def test_archive_is_a_valid_oci_layout(built: img.RuntimeImage, layout: dict[str, bytes], source: Path) -> None:
    assert json.loads(layout["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in layout.items():  # every blob is named by its content's digest
        if name.startswith("blobs/"):
            assert name == f"blobs/sha256/{hashlib.sha256(data).hexdigest()}"
    index = json.loads(layout["index.json"])
    assert index["schemaVersion"] == 2
    (desc,) = index["manifests"]
    assert desc["digest"] == built.digest
    assert desc["size"] == len(_blob(layout, desc["digest"]))
    assert desc["annotations"]["io.containerd.image.name"] == built.reference
    assert built.reference == f"berth.local/runtime:{berth.__version__}-{img.inputs(source).key}"
    manifest, config, layer = _manifest_config_layer(layout)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["size"] == len(_blob(layout, manifest["config"]["digest"]))
    (layer_desc,) = manifest["layers"]
    assert layer_desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer_desc["size"] == len(layer)
    plain = zlib.decompress(layer, wbits=31)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(plain).hexdigest()}"]}
    assert built.unpacked_bytes == len(plain)
    assert config["os"] == "linux" and config["architecture"] in {"amd64", "arm64"}
    assert config["config"]["User"] == "1000:1000"
    assert "HOME=/home/berth" in config["config"]["Env"]
    assert config["config"]["Cmd"] == ["python3"]


def test_layer_is_reproducible_and_small(layout: dict[str, bytes]) -> None:
    _, _, layer = _manifest_config_layer(layout)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        members = tar.getmembers()
        shadow = tar.extractfile("etc/shadow").read().decode()  # type: ignore[union-attr]
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
    assert "berth:x:1000:1000::/home/berth:/bin/sh" in passwd.splitlines()
    assert all(line.split(":")[2] == "" for line in shadow.splitlines())  # no build day: same files any day
    names = [m.name for m in members]
    by_name = {m.name: m for m in members}
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members)
    assert not [m.name for m in members if m.ischr() or m.isblk() or m.isfifo()]
    for prev, cur in itertools.pairwise(names):  # depth-first, each directory's children sorted
        a, b = prev.rsplit("/", 1) if "/" in prev else ("", prev), cur.rsplit("/", 1) if "/" in cur else ("", cur)
        if a[0] == b[0]:
            assert a[1] < b[1], (prev, cur)
    home = by_name["home/berth"]
    assert home.isdir() and (home.uid, home.gid) == (1000, 1000)
    assert by_name["usr/local/bin/berth"].mode & 0o111
    assert by_name["bin"].issym() and by_name["lib64"].issym()  # usrmerge links survive the dropped packages
    assert not [n for n in names if n.startswith(("usr/share/man/", "usr/share/locale/", "var/lib/apt/lists/", "dev/"))]
    docs = [n for n in names if n.startswith("usr/share/doc/") and n.count("/") > 3]
    assert docs and all(n.count("/") == 4 and n.endswith("/copyright") for n in docs)  # copyright files only
    assert "etc/apt/sources.list" not in names and "usr/bin/apt-get" not in names and "usr/bin/perl" not in names
    assert by_name["etc/resolv.conf"].size == 0  # no host details
    site = "usr/local/lib/python3.11/dist-packages"
    records = [n for n in names if n.startswith(site) and n.endswith(".dist-info/RECORD")]
    # One RECORD per distribution pip put there: berth and every pin (typer, boto3, … and what they require).
    installed = {
        re.sub(r"[-_.]+", "-", n.split("/")[-2].removesuffix(".dist-info").rsplit("-", 1)[0]).lower() for n in records
    }
    assert installed == {"berth"} | {pin.split("==")[0] for pin in img.python_pins()}, installed
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        listed = {
            posixpath.normpath(f"{site}/{row[0]}")
            for name in records
            for row in csv.reader(tar.extractfile(name).read().decode().splitlines())  # type: ignore[union-attr]
        }
    assert not sorted(listed - set(names))  # no RECORD names a removed script (its #! names the build's venv)
    assert len(layer) < 120 * 2**20, f"layer grew to {len(layer) / 2**20:.0f} MiB"


def test_write_layer_depends_only_on_content(tmp_path: Path) -> None:
    def tree(root: Path, mtime: int) -> None:
        (root / "b").mkdir(parents=True)
        (root / "b" / "x.txt").write_text("x")
        (root / "a.txt").write_text("a")
        (root / "link").symlink_to("a.txt")
        for p in (root / "a.txt", root / "b" / "x.txt", root / "b"):
            os.utime(p, (mtime, mtime))

    tree(tmp_path / "one", 1_000_000)
    tree(tmp_path / "two", 2_000_000)
    digests = [img.write_layer(tmp_path / name, io.BytesIO())[:2] for name in ("one", "two")]
    assert digests[0] == digests[1]
    (tmp_path / "two" / "a.txt").write_text("A")
    assert img.write_layer(tmp_path / "two", io.BytesIO())[:2] != digests[0]


def test_second_build_is_a_cache_hit(built: img.RuntimeImage, source: Path) -> None:
    started = time.monotonic()
    again = img.build_image(progress=_progress, source_root=source)
    assert time.monotonic() - started < 15
    assert again.cached
    assert (again.reference, again.digest, again.archive) == (built.reference, built.digest, built.archive)


def test_rebuild_is_reproducible_and_clears_a_killed_builds_leftovers(
    built: img.RuntimeImage, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = img.cache_root()
    leftovers = [cache / "build-0123456789abcdef-killed", cache / f"base-{img.inputs(source).debian_key}-killed"]
    for path in leftovers:
        (path / "rootfs").mkdir(parents=True)
    elsewhere = tmp_path / "another" / "checkout" / ".venv"  # CI's fresh clone builds with another venv's pip
    elsewhere.parent.mkdir(parents=True)
    elsewhere.symlink_to(Path(sys.executable).parent.parent)
    monkeypatch.setattr(sys, "executable", str(elsewhere / "bin" / Path(sys.executable).name))
    again = img.build_image(progress=_progress, source_root=source, rebuild=True)
    assert not again.cached
    assert not [p for p in leftovers if p.exists()]
    assert not list(cache.glob("build-*"))
    assert (again.reference, again.digest) == (built.reference, built.digest)  # same files, same image


def test_cli_builds_and_caches_only_without_a_sandbox_containerd(
    built: img.RuntimeImage, source: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(REPO / ".venv/bin/berth"), "sandbox", "image", "--state-dir", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"reference", "digest", "cached", "sizeBytes", "unpackedBytes", "archive", "imported"}
    assert out["imported"] == [] and Path(out["archive"]).is_file()
    if img.source_hash(REPO) == img.source_hash(source):  # else someone edited the checkout meanwhile
        assert out["reference"] == built.reference and out["digest"] == built.digest
        assert out["cached"] is True and out["sizeBytes"] == built.size_bytes
    assert "no sandbox containerd is running: built and cached only" in done.stderr


def test_a_change_in_berth_source_changes_the_hash(source: Path, tmp_path: Path) -> None:
    try:
        img.apt_mirror()
    except img.ImageError as err:
        _skip_or_fail(err.message)
    copy = _snapshot(tmp_path / "checkout", source)
    assert img.source_hash(copy) == img.source_hash(source)
    before = img.inputs(copy)
    (copy / "src/berth/rendezvous.py").write_text((copy / "src/berth/rendezvous.py").read_text() + "\n# changed\n")
    after = img.inputs(copy)
    assert after.source != before.source
    assert after.key != before.key and img.reference_for(after.key) != img.reference_for(before.key)
    assert after.debian_key == before.debian_key  # the Debian rootfs is reused
    (copy / "src/berth/__pycache__").mkdir(exist_ok=True)
    (copy / "src/berth/__pycache__/x.pyc").write_bytes(b"\0")
    assert img.inputs(copy).key == after.key  # bytecode is not an input


def test_finds_the_sockets_of_running_real_nodes_only(tmp_path: Path) -> None:
    import socket

    assert img.find_containerd_sockets(tmp_path / "absent") == []
    live, stale = tmp_path / "nodes/node-0/containerd.sock", tmp_path / "nodes/node-1/containerd.sock"
    for path in (live, stale):
        path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as dead:
        server.bind(str(live))
        server.listen()
        dead.bind(str(stale))  # a socket file nobody listens on: a crashed containerd's
        assert img.find_containerd_sockets(tmp_path) == [live]


def test_not_root_is_one_error_before_anything_runs(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _missing():
        _skip_or_fail(_missing() or "")
    monkeypatch.setattr(img.os, "geteuid", lambda: 1000)
    with pytest.raises(img.ImageError, match="needs root") as err:
        img.build_image(source_root=source, cache=tmp_path / "cache", rebuild=True)
    assert err.value.exit_code == 2
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".lock"]


def test_a_failed_debootstrap_is_one_error_and_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _missing():
        _skip_or_fail(_missing() or "")
    monkeypatch.setattr(img, "apt_mirror", lambda: "http://127.0.0.1:9/debian")  # nothing listens on port 9
    cache = tmp_path / "cache"
    with pytest.raises(img.ImageError, match="debootstrap failed") as err:
        img.build_image(source_root=source, cache=cache, progress=_progress)
    assert "127.0.0.1:9" in err.value.message and "\n" not in err.value.message  # debootstrap's own words
    assert err.value.hint is not None
    log = Path(err.value.hint.rsplit(" ", 1)[1])
    assert "Failed getting release file" in log.read_text()
    log.unlink()
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "debs"]  # no half-built rootfs
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in mounts


# --- running it --------------------------------------------------------------------------------

SMOKE = r"""
import os, subprocess, numpy as np, berth
from berth.checkpoint import CheckpointManager
print("ids", os.getuid(), os.getgid(), os.environ["HOME"])
print("version", berth.__version__, np.__version__)
state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "h": np.ones(5, np.float16), "step": 7}
with CheckpointManager("/tmp/ckpt", keep_last=2) as m:
    m.save(1, state)
    m.save(2, state)
    m.wait()
with CheckpointManager("/tmp/ckpt", keep_last=2) as m:
    step, got = m.restore()
print("restored", step, np.array_equal(got["w"], state["w"]) and np.array_equal(got["h"], state["h"]))
print(subprocess.run(["berth", "ckpt", "verify", "/tmp/ckpt"], capture_output=True, text=True).stdout.strip())
"""


def _unpack(layer: bytes, rootfs: Path) -> None:
    rootfs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        tar.extractall(rootfs, numeric_owner=True, filter="fully_trusted")


@pytest.fixture
def bundle(layout: dict[str, bytes], tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if shutil.which("runc") is None:
        _skip_or_fail("runc is not installed (apt-get install runc)")
    _, config, layer = _manifest_config_layer(layout)
    _unpack(layer, tmp_path / "bundle" / "rootfs")
    yield tmp_path / "bundle", config["config"]


def test_runs_under_runc_as_uid_1000(bundle: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, image_config = bundle
    subprocess.run(["runc", "spec"], cwd=path, check=True)
    spec = json.loads((path / "config.json").read_text())
    uid, gid = (int(x) for x in image_config["User"].split(":"))
    spec["process"].update(
        terminal=False,
        user={"uid": uid, "gid": gid},
        env=image_config["Env"],
        cwd=image_config["WorkingDir"],
        args=["/bin/sh", "-c", 'python3 -c "import berth, numpy; print(berth.__version__)" && python3 -c "$0"', SMOKE],
    )
    spec["root"]["readonly"] = True
    spec["mounts"].append(
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
    )
    (path / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "runc-state"
    cid = f"berth-image-test-{uuid.uuid4().hex[:8]}"
    try:
        done = subprocess.run(
            ["runc", "--root", str(state), "run", "--bundle", str(path), cid],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        subprocess.run(["runc", "--root", str(state), "delete", "--force", cid], capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == berth.__version__
    assert "ids 1000 1000 /home/berth" in lines
    assert any(line.startswith(f"version {berth.__version__} ") for line in lines)
    assert "restored 2 True" in lines
    assert "all 2 checkpoint step(s) verify" in lines
    listed = subprocess.run(["runc", "--root", str(state), "list", "-q"], capture_output=True, text=True)
    assert cid not in listed.stdout


def _cmdlines() -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


@pytest.fixture
def containerd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private containerd (own root, state, socket) in its own mount namespace; stopped and removed after."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        _skip_or_fail("containerd is not installed (apt-get install containerd)")
    base = tmp_path_factory.mktemp("ctrd")
    sock = Path(f"/tmp/berth-img-{uuid.uuid4().hex[:8]}.sock")  # sun_path is short: keep it out of pytest's dirs
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base}/root"\nstate = "{base}/state"\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n  disable_cgroup = true\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{base}/opt"\n'
    )
    log = open(base / "containerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "containerd", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (sock.is_socket() and img._answers(sock)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"containerd did not start: {(base / 'containerd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for leftover in (sock, Path(f"{sock}.ttrpc")):
            leftover.unlink(missing_ok=True)
        # its mounts lived in its own mount namespace; a shim outliving it would hold them
        shims = [pid for pid, cmd in _cmdlines().items() if str(sock) in cmd and pid != proc.pid]
        for pid in shims:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
        assert not shims, f"containerd left processes behind: {shims}"


def test_imports_into_containerd_and_runs_there(built: img.RuntimeImage, source: Path, containerd_socket: Path) -> None:
    assert img.import_image(built, containerd_socket) is True
    assert img.imported_images(containerd_socket)[built.reference] == built.digest
    assert img.import_image(built, containerd_socket) is False  # already there: no second import
    assert img.ensure_runtime_image(containerd_socket, source_root=source) == built.reference
    cid = f"berth-image-test-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            *("ctr", "--address", str(containerd_socket), "--namespace", img.NAMESPACE, "run", "--rm"),
            *(built.reference, cid),  # as the image config's User: 1000:1000
            *("python3", "-c", "import os, berth, numpy; print(berth.__version__, os.getuid())"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [berth.__version__, "1000"]
    tasks = subprocess.run(
        ["ctr", "--address", str(containerd_socket), "--namespace", img.NAMESPACE, "containers", "ls", "-q"],
        capture_output=True,
        text=True,
    )
    assert cid not in tasks.stdout


def test_runs_in_a_real_pod_with_image_pull_policy_never(built: img.RuntimeImage, source: Path) -> None:
    """`sandbox up --kubelet`; `berth sandbox image` imports into its containerd; a restricted pod runs the image."""
    import tempfile

    from berth.sandbox import NodeSpec, Sandbox, dns, find_bin_dir
    from berth.sandbox.node import RealNodes, SetupError

    bin_dir = find_bin_dir()
    if bin_dir is None or dns.find_binary() is None:
        _skip_or_fail("the control plane or CoreDNS is not built (tools/kube/build.sh, tools/coredns/build.sh)")
    assert bin_dir is not None
    try:
        RealNodes(Path("/tmp/berth-preflight"), "probe", 1).preflight(bin_dir)
    except SetupError as err:
        _skip_or_fail(f"this machine cannot run a real node: {err.message}")
    # Not under pytest's tmp: the kubelet's unix socket paths must stay under 108 bytes.
    box = Sandbox("pytest-image", Path(tempfile.mkdtemp(prefix="berth-img-")) / "state")
    try:
        state = box.up(NodeSpec(nodes=0), bin_dir=bin_dir, timeout_s=240, kubelets=1)
        done = subprocess.run(
            [sys.executable, "-m", "berth", "sandbox", "image", "--state-dir", str(box.state_dir), "-o", "json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["imported"] == [str(box.state_dir / "nodes/node-0/containerd.sock")]
        cached = img.cached_image(out["reference"].rsplit("-", 1)[1])
        assert cached is not None and cached.digest == out["digest"]
        assert img.import_image(cached, out["imported"][0]) is False  # the node has it: no second import
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "runtime-image", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"berth.dev/sandbox-node": "kubelet"},
                "securityContext": {
                    "runAsUser": 1000,
                    "runAsGroup": 1000,
                    "fsGroup": 1000,
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": out["reference"],
                        "imagePullPolicy": "Never",
                        "command": ["/bin/sh", "-c", 'id -u; berth --version; python3 -c "$0"', SMOKE],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        }
        kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(state.kubeconfig)]
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True, timeout=60)
        phase, deadline = "", time.monotonic() + 180
        while phase not in {"Succeeded", "Failed"} and time.monotonic() < deadline:
            time.sleep(1)
            phase = subprocess.run(
                [*kubectl, "get", "pod", "runtime-image", "-o", "jsonpath={.status.phase}"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
        logs = subprocess.run([*kubectl, "logs", "runtime-image"], capture_output=True, text=True, timeout=30)
        assert phase == "Succeeded", logs.stdout + logs.stderr
        lines = logs.stdout.splitlines()
        assert lines[:2] == ["1000", f"berth {berth.__version__}"]
        assert "restored 2 True" in lines and "all 2 checkpoint step(s) verify" in lines
        subprocess.run([*kubectl, "delete", "pod", "runtime-image", "--wait=true"], capture_output=True, timeout=120)
    finally:
        box.down()
        shutil.rmtree(box.state_dir.parent, ignore_errors=True)
