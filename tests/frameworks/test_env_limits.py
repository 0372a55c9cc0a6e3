"""Host lists grow with the replicas; Linux refuses to exec a command with an env entry over 128 KiB.

TF_CONFIG (every worker's ``host:port``) and HOROVOD_HOSTS (every pod's ``host:slots``) are the
env values whose size grows with ``spec.replicas``. The preamble exports them and then ``exec``s
the user's command, which the kernel refuses (E2BIG) once one ``NAME=value`` entry exceeds
MAX_ARG_STRLEN (32 pages of 4 KiB). TensorFlow reads its cluster only from the TF_CONFIG variable,
so berth refuses such specs, located at ``spec.replicas``, with the largest count that fits.

The limit is checked against the kernel here, byte-exact, and the largest accepted replica count
against the real preamble: it starts the command at that count and fails one replica above it.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from berth.render import render_all
from berth.rendezvous import MAX_ENV_ENTRY, Framework, RendezvousParams, env_entry_size
from berth.spec.errors import SpecError
from berth.spec.load import parse_spec

from ..conftest import RunBerth
from ..render.test_render_preamble import pod_env, run_preamble

TRUE = shutil.which("true") or "/bin/true"

# The names of examples/seed-tensorflow.yaml, the issue's ~2,000-replica example.
SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {{name: ml-training, namespace: ml}}
spec:
  framework: {framework}
  serviceName: tensorflow-training
  replicas: {replicas}
  image: busybox
  command: [train]
"""


def params(framework: str, replicas: int) -> RendezvousParams:
    return RendezvousParams(
        Framework(framework), "ml-training", "tensorflow-training", "ml", "cluster.local", 2222, replicas, 0
    )


def test_the_kernel_limit_is_max_env_entry_bytes() -> None:
    """One entry of exactly MAX_ENV_ENTRY bytes (NUL included) execs; one byte more does not."""
    fits = "X" * (MAX_ENV_ENTRY - len("V=") - 1)
    assert env_entry_size("V", fits) == MAX_ENV_ENTRY == 131072
    assert subprocess.run([TRUE], env={"V": fits}, check=False).returncode == 0
    with pytest.raises(OSError) as err:
        subprocess.run([TRUE], env={"V": fits + "X"}, check=False)
    assert err.value.errno == errno.E2BIG


@pytest.mark.parametrize(
    ("framework", "variable", "most"), [("tensorflow", "TF_CONFIG", 2032), ("horovod", "HOROVOD_HOSTS", 2202)]
)
def test_the_preamble_starts_the_command_at_the_limit_and_not_one_above(
    framework: str, variable: str, most: int
) -> None:
    p = params(framework, 10000)
    assert p.max_replicas() == most
    assert variable in p.oversized_env() and not replace(p, replicas=most).oversized_env()
    assert set(replace(p, replicas=most + 1).oversized_env()) == {variable}
    objects = render_all(parse_spec(SPEC.format(framework=framework, replicas=most)))
    for replicas, ok in ((most, True), (most + 1, False)):
        env = pod_env(objects, replicas - 1)  # the last pod: the most digits in its index
        env["BERTH_REPLICAS"] = str(replicas)  # the same template one replica over, past the check
        done = run_preamble(objects, env, "/bin/sh", [TRUE])
        if ok:
            assert done.returncode == 0, done.stderr.decode()
        else:
            assert done.returncode != 0
            assert b"Argument list too long" in done.stderr


@pytest.mark.parametrize(
    ("framework", "variable", "most"), [("tensorflow", "TF_CONFIG", 2032), ("horovod", "HOROVOD_HOSTS", 2202)]
)
def test_spec_over_the_limit_is_refused_at_replicas(framework: str, variable: str, most: int) -> None:
    parse_spec(SPEC.format(framework=framework, replicas=most))
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.format(framework=framework, replicas=most + 1), "big.yaml")
    [issue] = err.value.issues
    assert issue.path == ("spec", "replicas")
    size = env_entry_size(variable, params(framework, most + 1).env_for(most)[variable])
    assert issue.message == (
        f"{variable} for {most + 1} replicas is {size} bytes, over Linux's limit of 131072 bytes "
        "(128 KiB, MAX_ARG_STRLEN) for one environment variable: the training command could not start"
    )
    assert issue.hint is not None and issue.hint.startswith(f"at most {most} replicas with these names;")


@pytest.mark.parametrize("framework", ["pytorch", "jax", "none"])
def test_frameworks_without_host_lists_take_any_replica_count(framework: str) -> None:
    assert parse_spec(SPEC.format(framework=framework, replicas=10000)).spec.replicas == 10000


def test_cli_points_at_the_replicas_line(tmp_path: Path, berth: RunBerth) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SPEC.format(framework="tensorflow", replicas=5000), encoding="utf-8")
    result = berth("render", str(path))
    assert result.code == 2
    assert f"{path}:7:13: spec.replicas: TF_CONFIG for 5000 replicas is " in result.stderr
    assert "at most 2032 replicas" in result.stderr
