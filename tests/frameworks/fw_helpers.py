"""N "pods" on one machine: the env the rendered preamble computes, with pod names played by loopback.

How a pod's env is obtained here: the spec is rendered with ``berth``'s own renderer, and the
StatefulSet's container command (the real preamble) runs under ``/bin/sh`` with the env the
kubelet would give pod ``i`` (rendered values plus the downward API, filled in by
``tests/render/test_render_preamble.pod_env``); what it exports is read back with ``env -0``.

How the pod names resolve: in a cluster, ``<name>-<i>.<service>.<namespace>.svc.<domain>``
resolves through the headless Service to pod ``i``'s IP, and every pod has its own network
namespace, so all of them listen on the same port. The tests play that DNS step and nothing
else: each pod name in every exported value is replaced by its own loopback address
``127.0.0.<i+1>`` (Linux routes all of 127.0.0.0/8 to ``lo``). Names, ports, indices, counts and
the JSON around them stay exactly as the preamble wrote them. Rejected alternatives:
``/etc/hosts`` (machine-wide state shared with other runs, and not allowed here); names under
``.localhost`` (glibc does not resolve them without systemd's NSS module, and they would all be
127.0.0.1); a resolver shim via ``LD_PRELOAD`` (gRPC in JAX and TensorFlow resolves names on
its own). One consequence of sharing a host: only one process may listen on a given port, so
the tests use frameworks where one process (rank 0, the coordinator/master) listens on the
rendezvous port; the rendezvous port itself is a free one picked per test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.render import render_all
from berth.rendezvous import RendezvousParams
from berth.sandbox.proc import free_ports
from berth.spec.load import parse_spec

from ..render.test_render_preamble import SHELL_OWN, pod_env, run_preamble

SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {{name: trainer, namespace: ml}}
spec:
  framework: {framework}
  replicas: {replicas}
  port: {port}
  image: busybox
  command: [train]
  resources: {{limits: {{nvidia.com/gpu: {gpus}}}}}
"""


def free_port() -> int:
    """A TCP port nothing listens on now, outside the ephemeral range: the frameworks' clients retry
    connecting to it before rank 0 listens, and must never be handed it as their own source port."""
    return free_ports(1)[0]


@dataclass(frozen=True)
class Cluster:
    """A rendered spec: its rendezvous parameters and its Kubernetes objects."""

    params: RendezvousParams
    objects: list[dict[str, Any]]

    def preamble_env(self, ordinal: int) -> dict[str, str]:
        """Everything the user's command sees in pod ``ordinal``: the pod env after the real preamble ran."""
        env = pod_env(self.objects, ordinal)
        done = run_preamble(self.objects, env, "/bin/sh")
        assert done.returncode == 0, done.stderr.decode()
        after = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
        return {k: v for k, v in after.items() if k not in SHELL_OWN}

    def loopback(self, ordinal: int) -> str:
        """The address that stands for pod ``ordinal``."""
        return f"127.0.0.{ordinal + 1}"

    def on_loopback(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with every pod name replaced by its loopback address (the DNS step, nothing else).

        ``trainer-1.`` is never a prefix of ``trainer-10.``: each name ends at the dot after its index.
        """
        names = {self.params.host(i): self.loopback(i) for i in range(self.params.replicas)}
        out = {}
        for key, value in env.items():
            for name, addr in names.items():
                value = value.replace(name, addr)
            out[key] = value
        return out

    def pod_envs(self) -> list[dict[str, str]]:
        """The loopback env of every pod, in ordinal order."""
        return [self.on_loopback(self.preamble_env(i)) for i in range(self.params.replicas)]


def cluster(framework: str, replicas: int, *, gpus: int = 0, port: int | None = None) -> Cluster:
    """Render a ``framework`` spec with ``replicas`` pods on a free rendezvous port."""
    spec = parse_spec(SPEC.format(framework=framework, replicas=replicas, gpus=gpus, port=port or free_port()))
    return Cluster(spec.rendezvous, render_all(spec))


def base_env() -> dict[str, str]:
    """What a framework process needs from this machine besides the pod env: the interpreter's paths."""
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_pods(
    script: str,
    envs: Sequence[Mapping[str, str]],
    *,
    extra: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    python: str = sys.executable,
    timeout: float = 240,
) -> list[subprocess.CompletedProcess[str]]:
    """Start one process per pod env at once (``python -c script``, or ``argv``), wait for all.

    Each gets only the pod env over :func:`base_env` (PATH from the pod env, with PYTHON's
    directory in front so ``torchrun`` and ``python`` are the venv's). On a timeout every
    process still running is killed, so none is left behind.
    """
    procs: list[subprocess.Popen[str]] = []
    bindir = str(Path(python).parent)
    with contextlib.ExitStack() as files:
        logs = []
        try:
            for env in envs:
                full = {**base_env(), **env, **(extra or {})}
                full["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
                cmd = list(argv) if argv is not None else [python, "-c", script]
                # Files, not pipes: a chatty process cannot block on a full pipe while we wait on another.
                out = files.enter_context(tempfile.TemporaryFile("w+"))
                err = files.enter_context(tempfile.TemporaryFile("w+"))
                logs.append((out, err))
                procs.append(subprocess.Popen(cmd, env=full, stdout=out, stderr=err, text=True, start_new_session=True))
            deadline = time.monotonic() + timeout
            results = []
            for proc, (out, err) in zip(procs, logs, strict=True):
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
                out.seek(0)
                err.seek(0)
                results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read()))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    return results


def framework_python(module: str, variable: str, how: str) -> str:
    """An interpreter that imports MODULE: this one, else $VARIABLE (a venv of its own, e.g. CI's cached one).

    Skips when neither has it; fails when $VARIABLE is set but cannot import MODULE (CI sets it, so a
    broken cached venv cannot turn the test into a skip). HOW says how to get one.
    """
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return sys.executable
    other = os.environ.get(variable)
    if not other:
        pytest.skip(f"{module} is not importable here and ${variable} is not set: {how}", allow_module_level=True)
    probe = subprocess.run([other, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, f"${variable}={other} cannot import {module}: {probe.stderr[-2000:]}"
    return other


def result_lines(done: subprocess.CompletedProcess[str], tag: str = "RESULT") -> list[str]:
    """The ``RESULT ...`` lines a worker printed; fails with its stderr when it exited non-zero."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-4000:]}"
    return [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith(tag + " ")]
