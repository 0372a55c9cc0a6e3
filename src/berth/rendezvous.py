"""Per-pod rendezvous for each framework: the one source of truth (pure: no spec, no I/O).

Every pod of a StatefulSet shares one template, so values that differ per pod (the
TF_CONFIG task index, NODE_RANK, the JAX process id) cannot be constants in it: that
is the guide's bug, every worker claiming index 0. berth computes them when the
container starts. Two implementations of the same formulas live side by side here
and are tested against each other for every ordinal:

* :func:`preamble` — POSIX ``sh`` run before the user's command, needing only the
  downward-API env (stock framework images work without berth installed);
* :meth:`RendezvousParams.env_for` — Python, used by ``berth run`` and by tests.

It imports nothing above :mod:`berth.errors`, so ``berth run`` in the pod starts without
pydantic or the spec model; the spec builds its parameters (``TrainingCluster.rendezvous``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from berth.errors import BerthError


class Framework(StrEnum):
    """Distributed-training frameworks whose rendezvous berth computes per pod."""

    TENSORFLOW = "tensorflow"
    PYTORCH = "pytorch"
    HOROVOD = "horovod"
    JAX = "jax"
    NONE = "none"


@dataclass(frozen=True)
class RendezvousParams:
    """What a pod needs to know to find its peers; rendered into the pod as ``BERTH_*`` env."""

    framework: Framework
    name: str
    service: str
    namespace: str
    cluster_domain: str
    port: int
    replicas: int
    gpus_per_pod: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RendezvousParams:
        """Parameters from the ``BERTH_*`` env of a rendered pod (inverse of :meth:`env`)."""
        missing = [
            k
            for k in ("BERTH_NAME", "BERTH_SERVICE", "BERTH_NAMESPACE", "BERTH_REPLICAS", "BERTH_PORT")
            if not environ.get(k)
        ]
        if missing:
            raise BerthError(
                f"missing rendezvous environment: {', '.join(missing)}",
                "run inside a pod rendered by `berth render`, or set these variables",
            )
        try:
            return cls(
                framework=Framework(environ.get("BERTH_FRAMEWORK", "none")),
                name=environ["BERTH_NAME"],
                service=environ["BERTH_SERVICE"],
                namespace=environ["BERTH_NAMESPACE"],
                cluster_domain=environ.get("BERTH_CLUSTER_DOMAIN") or "cluster.local",
                port=int(environ["BERTH_PORT"]),
                replicas=int(environ["BERTH_REPLICAS"]),
                gpus_per_pod=int(environ.get("BERTH_GPUS_PER_POD") or 0),
            )
        except ValueError as err:
            raise BerthError(f"invalid rendezvous environment: {err}") from None

    def env(self) -> dict[str, str]:
        """The constant ``BERTH_*`` env every pod of the template gets."""
        return {
            "BERTH_FRAMEWORK": self.framework.value,
            "BERTH_NAME": self.name,
            "BERTH_SERVICE": self.service,
            "BERTH_NAMESPACE": self.namespace,
            "BERTH_CLUSTER_DOMAIN": self.cluster_domain,
            "BERTH_PORT": str(self.port),
            "BERTH_REPLICAS": str(self.replicas),
            "BERTH_GPUS_PER_POD": str(self.gpus_per_pod),
        }

    @property
    def slots(self) -> int:
        """Processes per pod: one per GPU, at least one."""
        return max(self.gpus_per_pod, 1)

    def host(self, ordinal: int) -> str:
        """Stable DNS name of pod ``ordinal`` through the headless Service."""
        return f"{self.name}-{ordinal}.{self.service}.{self.namespace}.svc.{self.cluster_domain}"

    def hosts(self) -> list[str]:
        """DNS names of all pods, in ordinal order."""
        return [self.host(i) for i in range(self.replicas)]

    def env_for(self, ordinal: int) -> dict[str, str]:
        """The exact env :func:`preamble` computes in pod ``ordinal``."""
        if not 0 <= ordinal < self.replicas:
            raise BerthError(f"pod index {ordinal} is outside 0..{self.replicas - 1}")
        env = {"POD_INDEX": str(ordinal)}
        fw, port, n, s = self.framework, self.port, self.replicas, self.slots
        if fw is Framework.TENSORFLOW:
            cfg = {
                "cluster": {"worker": [f"{h}:{port}" for h in self.hosts()]},
                "task": {"type": "worker", "index": ordinal},
            }
            env["TF_CONFIG"] = json.dumps(cfg, separators=(",", ":"))
        elif fw is Framework.PYTORCH:
            common = {
                "MASTER_ADDR": self.host(0),
                "MASTER_PORT": str(port),
                "NODE_RANK": str(ordinal),
                "NNODES": str(n),
                "NPROC_PER_NODE": str(s),
            }
            env.update(common)
            env.update({f"PET_{k}": v for k, v in common.items()})
            env.update({"WORLD_SIZE": str(n * s), "RANK": str(ordinal * s)})
        elif fw is Framework.HOROVOD:
            env.update(
                {
                    "HOROVOD_HOSTS": ",".join(f"{h}:{s}" for h in self.hosts()),
                    "HOROVOD_NUM_PROC": str(n * s),
                    "HOROVOD_HOSTNAME": self.host(ordinal),
                }
            )
        elif fw is Framework.JAX:
            env.update(
                {
                    "JAX_COORDINATOR_ADDRESS": f"{self.host(0)}:{port}",
                    "JAX_PROCESS_ID": str(ordinal),
                    "JAX_NUM_PROCESSES": str(n),
                    # What jax.distributed.initialize() reads with no arguments (its Slurm detection):
                    # JAX has no env of its own for the process count and id. See docs/frameworks.md.
                    "SLURM_JOB_ID": "0",
                    "SLURM_STEP_NODELIST": self.host(0),
                    "SLURM_NTASKS": str(n),
                    "SLURM_PROCID": str(ordinal),
                    "SLURM_LOCALID": "0",
                }
            )
            if self.gpus_per_pod >= 1:
                # The Slurm path pins a process to GPU SLURM_LOCALID; one process per pod uses them all.
                env["JAX_LOCAL_DEVICE_IDS"] = ",".join(str(g) for g in range(self.gpus_per_pod))
        return env

    def oversized_env(self) -> dict[str, int]:
        """Variables whose ``NAME=value`` entry exceeds :data:`MAX_ENV_ENTRY` in some pod, with their size.

        Lists grow with the replicas (TF_CONFIG, HOROVOD_HOSTS); the kernel refuses to exec a
        command with such an entry (E2BIG), so the container would never start. The longest
        values are in the last pod (most digits in its index) and pod 0.
        """
        sizes: dict[str, int] = {}
        for ordinal in {0, self.replicas - 1}:
            for key, value in self.env_for(ordinal).items():
                size = env_entry_size(key, value)
                if size > MAX_ENV_ENTRY:
                    sizes[key] = max(size, sizes.get(key, 0))
        return sizes

    def max_replicas(self) -> int:
        """The most replicas, up to :attr:`replicas`, whose env fits :data:`MAX_ENV_ENTRY` with these names."""

        def fits(replicas: int) -> bool:
            return not replace(self, replicas=replicas).oversized_env()

        if fits(self.replicas):
            return self.replicas
        low, high = 0, self.replicas  # low fits (none trivially), high does not
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if fits(mid) else (low, mid)
        return low


MAX_ENV_ENTRY = 32 * 4096
"""Linux MAX_ARG_STRLEN: the most bytes one ``NAME=value`` env entry may take in execve, its NUL included."""


def env_entry_size(name: str, value: str) -> int:
    """Bytes ``NAME=value`` takes in an execve env block (UTF-8 and the terminating NUL)."""
    return len(name.encode()) + 1 + len(value.encode()) + 1


_HEAD = r"""i="${POD_INDEX:-${POD_NAME##*-}}"
case "$i" in ''|*[!0-9]*)
  echo "berth: cannot tell this pod's index (POD_INDEX='$POD_INDEX' POD_NAME='$POD_NAME')" >&2; exit 64;;
esac
export POD_INDEX="$i"
d="$BERTH_SERVICE.$BERTH_NAMESPACE.svc.${BERTH_CLUSTER_DOMAIN:-cluster.local}"
s="${BERTH_GPUS_PER_POD:-0}"; [ "$s" -ge 1 ] 2>/dev/null || s=1
"""

_LOOP = r"""l=""; n=0
while [ "$n" -lt "$BERTH_REPLICAS" ]; do l="$l${l:+,}ITEM"; n=$((n+1)); done
"""

_BODY = {
    Framework.TENSORFLOW: _LOOP.replace("ITEM", r"\"$BERTH_NAME-$n.$d:$BERTH_PORT\"")
    + r"""export TF_CONFIG="{\"cluster\":{\"worker\":[$l]},\"task\":{\"type\":\"worker\",\"index\":$i}}"
""",
    Framework.PYTORCH: r"""export MASTER_ADDR="$BERTH_NAME-0.$d" MASTER_PORT="$BERTH_PORT" NODE_RANK="$i"
export NNODES="$BERTH_REPLICAS" NPROC_PER_NODE="$s"
export PET_MASTER_ADDR="$MASTER_ADDR" PET_MASTER_PORT="$MASTER_PORT" PET_NODE_RANK="$i"
export PET_NNODES="$NNODES" PET_NPROC_PER_NODE="$s"
export WORLD_SIZE="$((BERTH_REPLICAS * s))" RANK="$((i * s))"
""",
    Framework.HOROVOD: _LOOP.replace("ITEM", "$BERTH_NAME-$n.$d:$s")
    + r"""export HOROVOD_HOSTS="$l" HOROVOD_NUM_PROC="$((BERTH_REPLICAS * s))" HOROVOD_HOSTNAME="$BERTH_NAME-$i.$d"
""",
    Framework.JAX: r"""export JAX_COORDINATOR_ADDRESS="$BERTH_NAME-0.$d:$BERTH_PORT" JAX_PROCESS_ID="$i"
export JAX_NUM_PROCESSES="$BERTH_REPLICAS"
export SLURM_JOB_ID=0 SLURM_STEP_NODELIST="$BERTH_NAME-0.$d" SLURM_NTASKS="$BERTH_REPLICAS" SLURM_PROCID="$i"
export SLURM_LOCALID=0
if [ "${BERTH_GPUS_PER_POD:-0}" -ge 1 ] 2>/dev/null; then
  l=""; n=0; while [ "$n" -lt "$s" ]; do l="$l${l:+,}$n"; n=$((n+1)); done; export JAX_LOCAL_DEVICE_IDS="$l"
fi
""",
    Framework.NONE: "",
}


def preamble(framework: Framework) -> str:
    """POSIX sh that exports the rendezvous env of ``framework`` from the pod's ``BERTH_*`` env."""
    return _HEAD + _BODY[framework]


def wrap_command(framework: Framework, command: list[str]) -> list[str]:
    """Container command running the preamble, then exec-ing the user's command with its args intact."""
    return ["/bin/sh", "-c", preamble(framework) + 'exec "$@"', "--", *command]
