"""``spec.datasets`` → a populate Job per shared dataset, init containers in the trainer pods.

- **Into a shared volume**: one ``batch/v1`` Job, ``<cluster>-<dataset>-<hash>``, mounts the claim
  writable and runs ``berth stage`` once (``restartPolicy: OnFailure``: a killed copier restarts in
  the same pod and resumes from its journal). Its report (files, bytes, seconds, bytes/s) is the
  container's termination message. The hash covers the Job's pod template, because a Job's template
  cannot change: a changed dataset gets a new Job (``up --prune`` removes the old one), and the new
  one skips every file that is already up to date. Each trainer gets a ``wait-<dataset>`` init
  container (the trainer's own image: ``/bin/sh`` and ``grep``) that mounts the claim read-only and waits
  for the stage manifest naming this source — written only once every file is verified — so the
  trainers' mount stays read-only and none starts on half a dataset.
- **Into a per-pod volume**: a ``stage-<dataset>`` init container in every pod stages its own copy
  (``shard: perRank``: pod ``i`` of ``n`` takes files ``i, i+n, …`` of the sorted listing); a
  restarted pod skips what its volume already holds.

Credentials: a Secret's ``AWS_*`` keys as env (``secretName``), else none, so boto3 finds the pod's
cloud identity (IRSA, Pod Identity, Workload Identity on the pods' ServiceAccount).
"""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
from typing import Any

from berth.contract import DATASET_COMPONENT, STAGE_MANIFEST, STAGE_STATE_DIR
from berth.render.identity import pod_labels
from berth.render.labels import labels, meta
from berth.render.workload import CONTAINER_SECURITY, pod_security, s3_env, service_account_name
from berth.spec.datasets import JOB_HASH_LEN, Target, init_container_name, populate_job_prefix, targets
from berth.spec.model import TrainingCluster

# Where the populate Job mounts the shared claim.
JOB_MOUNT = "/dataset"
# berth stage keeps a few 4 MiB buffers per thread; boto3 and the listing take the rest.
STAGE_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
TERMINATION_LOG = "/dev/termination-log"

# $0: the container's name, $1: the manifest, $2: the line the manifest must hold, $3: the dataset.
WAIT_SCRIPT = """n=0
until [ -f "$1" ] && grep -qF "$2" "$1"; do
  if [ $((n % 30)) -eq 0 ]; then echo "waiting for dataset $3: its populate Job has not finished"; fi
  n=$((n + 2)); sleep 2
done
echo "dataset $3 is ready"
"""


def _stage_container(spec: TrainingCluster, t: Target, name: str, dest: str, mount: dict[str, Any]) -> dict[str, Any]:
    ds = t.dataset
    # The report becomes the container's termination message: `kubectl get pod -o yaml` shows the figures.
    command = ["berth", "stage", ds.source, dest, "--report", TERMINATION_LOG]
    if ds.concurrency is not None:  # else berth stage picks by the files' sizes
        command[4:4] = ["--concurrency", str(ds.concurrency)]
    env: list[dict[str, Any]] = []
    if ds.shard == "perRank":
        env.append(
            {
                "name": "POD_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
            }
        )
        command += ["--shard", f"$(POD_INDEX)/{spec.spec.replicas}"]
    if ds.source.startswith("s3://"):
        env += s3_env(ds.secret_name, ds.endpoint, ds.region)
    container: dict[str, Any] = {"name": name, "image": ds.image or spec.spec.image}
    if spec.spec.image_pull_policy:
        container["imagePullPolicy"] = spec.spec.image_pull_policy
    container["command"] = command
    if env:
        container["env"] = env
    container.update(
        {
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": copy.deepcopy(STAGE_RESOURCES),
            "securityContext": copy.deepcopy(CONTAINER_SECURITY),
            "volumeMounts": [mount],
        }
    )
    return container


def _dest(base: str, path: str) -> str:
    return posixpath.join(base, path) if path else base


def populate_jobs(spec: TrainingCluster) -> list[dict[str, Any]]:
    """One Job per dataset into a shared volume, after its claim in apply order."""
    out = []
    for t in targets(spec):
        if not t.shared:
            continue
        claim = spec.spec.shared_volumes[t.volume].claim_name
        container = _stage_container(
            spec, t, "stage", _dest(JOB_MOUNT, t.dataset.path), {"name": "dataset", "mountPath": JOB_MOUNT}
        )
        pod: dict[str, Any] = {
            "serviceAccountName": service_account_name(spec),
            "automountServiceAccountToken": False,
            "restartPolicy": "OnFailure",
            "securityContext": pod_security(spec),
            "containers": [container],
            "volumes": [{"name": "dataset", "persistentVolumeClaim": {"claimName": claim}}],
        }
        sch = spec.spec.scheduling
        if sch.node_selector:
            pod["nodeSelector"] = dict(sch.node_selector)
        if sch.tolerations:
            pod["tolerations"] = [tol.model_dump(exclude_none=True, by_alias=True) for tol in sch.tolerations]
        if spec.spec.image_pull_secrets:
            pod["imagePullSecrets"] = [{"name": n} for n in spec.spec.image_pull_secrets]
        template = {"metadata": {"labels": {**labels(spec, DATASET_COMPONENT), **pod_labels(spec)}}, "spec": pod}
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:JOB_HASH_LEN]
        out.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta(spec, f"{populate_job_prefix(spec, t.name)}-{digest}", DATASET_COMPONENT),
                "spec": {"backoffLimit": 6, "template": template},
            }
        )
    return out


def init_containers(spec: TrainingCluster) -> list[dict[str, Any]]:
    """The trainer pod's dataset init containers, before the spec's own: stage (per-pod) or wait (shared)."""
    out = []
    for t in targets(spec):
        if not t.shared:
            mount = {"name": t.volume, "mountPath": t.mount_path}
            out.append(_stage_container(spec, t, init_container_name(t.name, shared=False), t.directory, mount))
            continue
        manifest = posixpath.join(t.directory, STAGE_STATE_DIR, STAGE_MANIFEST)
        name = init_container_name(t.name, shared=True)
        container: dict[str, Any] = {"name": name, "image": spec.spec.image}
        if spec.spec.image_pull_policy:
            container["imagePullPolicy"] = spec.spec.image_pull_policy
        container.update(
            {
                "command": ["/bin/sh", "-c", WAIT_SCRIPT, name, manifest, _manifest_line(t), t.name],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                "securityContext": copy.deepcopy(CONTAINER_SECURITY),
                "volumeMounts": [{"name": t.volume, "mountPath": t.mount_path, "readOnly": True}],
            }
        )
        out.append(container)
    return out


def _manifest_line(t: Target) -> str:
    """The manifest's ``source`` line for this dataset, as ``berth stage`` writes it (JSON, sorted keys)."""
    return f'"source": {json.dumps(t.dataset.source)}'
