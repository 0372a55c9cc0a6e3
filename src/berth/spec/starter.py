"""The commented starter spec ``berth init`` writes."""

from __future__ import annotations

_COMMAND = {
    "tensorflow": ("tensorflow/tensorflow:2.18.0-gpu", '["python", "/workspace/train.py"]'),
    "pytorch": ("pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", '["torchrun", "/workspace/train.py"]'),
    "horovod": ("horovod/horovod:0.28.1", '["python", "/workspace/train.py"]'),
    "jax": ("nvcr.io/nvidia/jax:24.10-py3", '["python", "/workspace/train.py"]'),
    "none": ("python:3.12-slim", '["python", "/workspace/train.py"]'),
}

_TEMPLATE = """\
# berth spec: one file for the whole storage stack of a training cluster.
# `berth explain berth.yaml` says what it creates; `berth render berth.yaml` prints the objects.
apiVersion: berth.dev/v1alpha1
kind: TrainingCluster
metadata:
  name: {name}
  namespace: default
spec:
  framework: {framework}            # tensorflow | pytorch | horovod | jax | none
  replicas: 2                        # one pod per replica: {name}-0, {name}-1, ...
  port: 2222                         # rendezvous port; peers find each other through a headless Service
  image: {image}
  command: {command}
  resources:                         # the GPU request always equals the limit
    requests: {{cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}}
    limits: {{cpu: "8", memory: 32Gi, nvidia.com/gpu: 1}}
  storageClasses:                    # created by berth unless existing: true
    fast-ssd: {{provider: aws-ebs, type: gp3, iops: 6000, throughput: 500, encrypted: true, tier: hot}}
    standard: {{existing: true, tier: warm}}
  volumes:                           # one claim per pod, kept across restarts and rescheduling
    checkpoints: {{mountPath: /mnt/checkpoints, size: 100Gi, storageClass: fast-ssd}}
    scratch: {{mountPath: /mnt/scratch, size: 200Gi, storageClass: standard}}
  # sharedVolumes:                   # one claim every pod mounts, read-only for datasets
  #   dataset: {{claimName: dataset, mountPath: /data, size: 1Ti, storageClass: nfs-client,
  #             accessMode: ReadOnlyMany}}
  # archive: {{url: "s3://bucket/{name}", secretName: s3-credentials}}   # cold tier for checkpoints
  securityContext: {{runAsUser: 1000, fsGroup: 1000}}
  disruption: {{maxUnavailable: 1}}
  volumeRetention: {{whenScaled: Retain, whenDeleted: Retain}}   # `berth gc` removes orphans on request
  monitoring: {{prometheus: true, alerts: true}}
  lifecycle:                         # `berth run` supervises the trainer (docs/lifecycle.md); the image needs berth
    onComplete: scaleToZero          # when every rank exited 0: release the GPUs, keep the claims (or: idle)
    maxRestarts: 3                   # gang restarts after a failure before the run is Failed
  # backup: {{schedule: "0 2 * * *", ttl: 720h}}                  # Velero, with CSI snapshots
"""


def starter_spec(framework: str, name: str, existing_class: str | None = None) -> str:
    """A valid, commented spec for ``framework``.

    With ``existing_class`` every volume uses that class of the cluster (e.g. the sandbox's
    ``standard``) instead of the AWS preset, so the spec runs anywhere as written.
    """
    image, command = _COMMAND[framework]
    text = _TEMPLATE.format(name=name, framework=framework, image=image, command=command)
    if existing_class:
        text = (
            text.replace(
                "    fast-ssd: {provider: aws-ebs, type: gp3, iops: 6000, throughput: 500, "
                "encrypted: true, tier: hot}\n"
                "    standard: {existing: true, tier: warm}\n",
                f"    {existing_class}: {{existing: true, tier: hot}}\n",
            )
            .replace("storageClass: fast-ssd", f"storageClass: {existing_class}")
            .replace("storageClass: standard}", f"storageClass: {existing_class}}}")
        )
    return text
