"""The rendered rendezvous preamble, executed as the container would run it, for every ordinal.

The container command is taken from the rendered StatefulSet unchanged; only the user's
command after ``--`` is replaced by ``env -0`` to read what the preamble exported. The pod
env is the rendered env with the downward-API values a kubelet would fill in set by hand.
The result must equal ``RendezvousParams.env_for(ordinal)``, the Python twin ``berth run`` uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.render import render_all
from berth.rendezvous import RendezvousParams
from berth.spec.load import parse_spec

from .conftest import Rendered

# The image's /bin/sh (dash on Debian/Ubuntu-based framework images) and bash, each once.
SHELLS = list({os.path.realpath(s): s for s in ("/bin/sh", shutil.which("dash"), shutil.which("bash")) if s}.values())
FRAMEWORK_EXAMPLES = {"tensorflow": "seed-tensorflow", "pytorch": "pytorch", "horovod": "horovod", "jax": "jax"}
ENV = shutil.which("env") or "/usr/bin/env"
# Variables shells define on their own; not exported by the preamble.
SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    container: dict[str, Any] = sts["spec"]["template"]["spec"]["containers"][0]
    return container


def pod_env(objects: list[dict[str, Any]], ordinal: int, *, with_index: bool = True) -> dict[str, str]:
    """The env the kubelet gives pod ``ordinal``: rendered values, downward API and Secrets filled in."""
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    name, namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
    fields = {
        "metadata.name": f"{name}-{ordinal}",
        "metadata.namespace": namespace,
        "metadata.labels['apps.kubernetes.io/pod-index']": str(ordinal) if with_index else "",
    }
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    for item in _container(objects)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        elif not item["valueFrom"]["secretKeyRef"].get("optional"):
            env[item["name"]] = f"secret-{item['name'].lower()}"
    return env


def run_preamble(
    objects: list[dict[str, Any]], env: dict[str, str], shell: str, command: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the rendered container command with ``shell`` as its interpreter."""
    rendered = _container(objects)["command"]
    assert rendered[:2] == ["/bin/sh", "-c"] and rendered[3] == "--"
    argv = [shell, "-c", rendered[2], "--", *(command or [ENV, "-0"])]
    return subprocess.run(argv, env=env, capture_output=True, check=False, timeout=30)


def exported(objects: list[dict[str, Any]], ordinal: int, shell: str, *, with_index: bool = True) -> dict[str, str]:
    """What the preamble changed or added in the env of pod ``ordinal``."""
    env = pod_env(objects, ordinal, with_index=with_index)
    out = run_preamble(objects, env, shell)
    assert out.returncode == 0, out.stderr.decode()
    after = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if item)
    return {k: v for k, v in after.items() if env.get(k) != v and k not in SHELL_OWN}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("framework", sorted(FRAMEWORK_EXAMPLES))
def test_preamble_matches_env_for_every_ordinal(framework: str, shell: str, examples: dict[str, Rendered]) -> None:
    rendered = examples[FRAMEWORK_EXAMPLES[framework]]
    assert rendered.spec.spec.framework.value == framework
    params = RendezvousParams.from_env(pod_env(rendered.objects, 0))
    assert params == rendered.spec.rendezvous
    replicas = rendered.spec.spec.replicas
    seen_ranks: set[str] = set()
    for ordinal in range(replicas):
        got = exported(rendered.objects, ordinal, shell)
        want = params.env_for(ordinal)
        # POD_INDEX is already in the pod env (downward API); the rest is the preamble's work.
        assert got == {k: v for k, v in want.items() if k != "POD_INDEX"}, f"ordinal {ordinal}"
        seen_ranks.add(_rank(framework, got))
    assert len(seen_ranks) == replicas  # one distinct rendezvous index per pod


def _rank(framework: str, env: dict[str, str]) -> str:
    if framework == "tensorflow":
        return str(json.loads(env["TF_CONFIG"])["task"]["index"])
    return {
        "pytorch": env.get("NODE_RANK", ""),
        "jax": env.get("JAX_PROCESS_ID", ""),
        "horovod": env.get("HOROVOD_HOSTNAME", ""),
    }[framework]


@pytest.mark.parametrize("shell", SHELLS)
def test_tf_config_is_json_with_this_pods_index(shell: str, examples: dict[str, Rendered]) -> None:
    """The guide's bug was "index": 0 in every worker; here each pod gets its own, in valid JSON."""
    rendered = examples["seed-tensorflow"]
    for ordinal in range(3):
        config = json.loads(exported(rendered.objects, ordinal, shell)["TF_CONFIG"])
        assert config["task"] == {"type": "worker", "index": ordinal}
        assert config["cluster"]["worker"] == [
            f"ml-training-{i}.tensorflow-training.ml.svc.cluster.local:2222" for i in range(3)
        ]


@pytest.mark.parametrize("shell", SHELLS)
def test_index_falls_back_to_the_pod_name(shell: str, examples: dict[str, Rendered]) -> None:
    """Clusters without the pod-index label (before 1.28) leave POD_INDEX empty: the name's suffix is used."""
    rendered = examples["pytorch"]
    got = exported(rendered.objects, 5, shell, with_index=False)
    assert got["POD_INDEX"] == "5"
    assert got["NODE_RANK"] == "5" and got["RANK"] == "40"


@pytest.mark.parametrize("shell", SHELLS)
def test_unknown_index_stops_the_container(shell: str, examples: dict[str, Rendered]) -> None:
    rendered = examples["jax"]
    env = pod_env(rendered.objects, 0, with_index=False)
    env["POD_NAME"] = "jax-lm-worker"
    out = run_preamble(rendered.objects, env, shell)
    assert out.returncode == 64
    assert b"cannot tell this pod's index" in out.stderr
    assert out.stdout == b""


@pytest.mark.parametrize("shell", SHELLS)
def test_user_command_and_args_pass_through_intact(shell: str, examples: dict[str, Rendered]) -> None:
    """exec "$@": no word splitting, globbing or expansion of the user's arguments."""
    rendered = examples["horovod"]
    printf = shutil.which("printf") or "/usr/bin/printf"
    out = run_preamble(
        rendered.objects, pod_env(rendered.objects, 1), shell, [printf, "%s|", "a b", "$HOME", "*", '--flag="q"']
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == 'a b|$HOME|*|--flag="q"|'


def test_rendered_command_keeps_the_users_command(examples: dict[str, Rendered]) -> None:
    for rendered in examples.values():
        if rendered.spec.spec.framework.value == "none":
            continue
        assert _container(rendered.objects)["command"][4:] == rendered.spec.spec.command


_SPEC = """\
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata: {{name: {name}, namespace: {ns}}}
spec:
  framework: {fw}
  replicas: {replicas}
  port: {port}
  clusterDomain: {domain}
  image: busybox
  command: [train]
  resources: {{limits: {{nvidia.com/gpu: {gpus}}}}}
"""


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fw=st.sampled_from(["tensorflow", "pytorch", "horovod", "jax"]),
    replicas=st.integers(1, 40),
    gpus=st.integers(0, 8),
    port=st.integers(1024, 65535),
    name=st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"),
    ns=st.from_regex(r"\A[a-z][a-z0-9]{0,10}\Z"),
    domain=st.sampled_from(["cluster.local", "k8s.example.org"]),
)
def test_preamble_agrees_with_python_for_any_cluster(
    fw: str, replicas: int, gpus: int, port: int, name: str, ns: str, domain: str
) -> None:
    """First and last ordinal of random clusters, under /bin/sh."""
    spec = parse_spec(_SPEC.format(fw=fw, replicas=replicas, gpus=gpus, port=port, name=name, ns=ns, domain=domain))
    objects = render_all(spec)
    params = spec.rendezvous
    for ordinal in {0, replicas - 1}:
        want = {k: v for k, v in params.env_for(ordinal).items() if k != "POD_INDEX"}
        assert exported(objects, ordinal, "/bin/sh") == want


def test_from_env_names_what_is_missing_or_wrong(examples: dict[str, Rendered]) -> None:
    from berth.errors import BerthError

    with pytest.raises(BerthError, match="BERTH_NAME, BERTH_SERVICE, BERTH_NAMESPACE, BERTH_REPLICAS, BERTH_PORT"):
        RendezvousParams.from_env({})
    env = pod_env(examples["jax"].objects, 0)
    with pytest.raises(BerthError, match="invalid rendezvous environment"):
        RendezvousParams.from_env({**env, "BERTH_PORT": "http"})
    with pytest.raises(BerthError, match=r"outside 0\.\.3"):
        RendezvousParams.from_env(env).env_for(4)
