"""The names berth shares with clusters, pods and other tools: its one home.

Everything here is a promise to something outside this process — a label a selector
matches, an annotation ``berth lint`` reads off someone's manifest, the field manager
that owns applied fields, the env the rendezvous preamble exports. A literal of any of
them elsewhere is a second home that can drift; import the name from here instead.
Leaf module: imports nothing from berth.
"""

from __future__ import annotations

# The spec's own resource type (``berth render`` input, and the CRD an operator serves).
API_GROUP = "berth.dev"
API_VERSION = "berth.dev/v1alpha1"
KIND = "TrainingCluster"

# Server-side apply owner of every field berth writes.
FIELD_MANAGER = "berth"

# Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "berth"
PART_OF = "berth"
# The component of the training pods (StatefulSet, its Service, PDB and policies select it).
TRAINING_COMPONENT = "training"

# Well-known names of Kubernetes and the NVIDIA device plugin that berth schedules and diagnoses by.
LABEL_ZONE = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"

# The component of a dataset's populate Job (spec.datasets into a shared volume): not "training", so
# the StatefulSet, its Service and PDB never select the Job's pod.
DATASET_COMPONENT = "dataset"
# What `berth stage` keeps in the directory it fills: the manifest (written last, when every file is
# verified) is what a trainer's init container waits for on a shared dataset volume.
STAGE_STATE_DIR = ".berth-stage"
STAGE_MANIFEST = "manifest.json"

# `berth sandbox` labels each node with its kind: "kubelet" (a real node: containerd + runc) or
# "kwok" (a fake one). A spec picks one with `nodeSelector: {berth.dev/sandbox-node: kubelet}`.
LABEL_SANDBOX_NODE = "berth.dev/sandbox-node"

# The trainer container every rendered pod runs (sidecars, init containers and overlays may not reuse it).
TRAINER_CONTAINER = "trainer"
# The memory-backed volume berth mounts at /dev/shm when the spec sets `shm`.
SHM_VOLUME = "shm"
SHM_PATH = "/dev/shm"

# Batch queues: Kueue reads the LocalQueue from a label on the StatefulSet
# (https://kueue.sigs.k8s.io/docs/tasks/run/statefulset/); Volcano schedules pods whose
# schedulerName is `volcano`, takes the queue from a pod annotation and gangs the pods of one
# owner with the owner's group-min-member annotation.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
VOLCANO_SCHEDULER = "volcano"
ANNOTATION_VOLCANO_QUEUE = "scheduling.volcano.sh/queue-name"
ANNOTATION_VOLCANO_MIN_MEMBER = "scheduling.volcano.sh/group-min-member"
# Cloud identity (spec.identity, src/berth/render/identity.py): what each cloud's webhook or metadata server reads.
ANNOTATION_EKS_ROLE_ARN = "eks.amazonaws.com/role-arn"  # EKS IRSA, on the ServiceAccount
ANNOTATION_GKE_SERVICE_ACCOUNT = "iam.gke.io/gcp-service-account"  # GKE Workload Identity, on the ServiceAccount
ANNOTATION_AZURE_CLIENT_ID = "azure.workload.identity/client-id"  # Azure Workload Identity, on the ServiceAccount
ANNOTATION_AZURE_TENANT_ID = "azure.workload.identity/tenant-id"
LABEL_AZURE_USE = "azure.workload.identity/use"  # "true" on the pod: the Azure webhook's object selector
# kwok's own mark on the nodes it simulates (no kubelet: no volume stats); the sandbox sets it too.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"

# berth.dev/* annotations.
ANNOTATION_TIER = "berth.dev/tier"  # hot | warm | cold, on StorageClasses and claim templates
ANNOTATION_CHECKPOINT_VOLUME = "berth.dev/checkpoint-volume"  # "true" on a claim that holds checkpoints
ANNOTATION_CHECKPOINT_SIZE = "berth.dev/checkpoint-size"  # a quantity: bytes of one checkpoint
ANNOTATION_CHECKPOINT_KEEP = "berth.dev/checkpoint-keep"  # how many checkpoints are retained
ANNOTATION_PROTECT = "berth.dev/protect"  # "true": never deleted by down, gc or up --prune
ANNOTATION_IGNORE = "berth.dev/ignore"  # "<rule-id>: <reason>; ..." lint suppressions
ANNOTATION_SPEC = "berth.dev/spec"  # the applied spec, on the StatefulSet (scale re-renders from it)
# "<namespace>/<name>" of the berth cluster that created a cluster-scoped class (StorageClass,
# VolumeSnapshotClass): all namespaces share those names, so `plan`/`up` tell their own from another's.
ANNOTATION_OWNER = "berth.dev/owner"
ANNOTATION_RUN_STATE = "berth.dev/run"  # JSON: the run's phase, by rank 0's supervisor on the StatefulSet
ANNOTATION_RANK_STATE = "berth.dev/rank"  # JSON: one rank's phase, restarts, step, exit code, on its pod
# On SIGTERM the supervisor SIGKILLs the trainer this many seconds before the kubelet would kill the
# container, so that it can still record and publish the stop (doctor: a stop that long was cut short).
STOP_MARGIN_S = 5
# "true" on a TrainingCluster: the operator's delete finalizer takes no last Velero backup (docs/operator.md).
ANNOTATION_SKIP_FINAL_BACKUP = "berth.dev/skip-final-backup"
# JSON {"<rank>": <step>} on a Velero Backup `berth backup` made: the archived step each rank flushed first.
ANNOTATION_ARCHIVE_STEPS = "berth.dev/archive-steps"

# The constant env every rendered pod gets; the rendezvous formula reads it at start-up.
ENV_PREFIX = "BERTH_"
# Set on the trainer container when `berth run` supervises it (spec.lifecycle): its onComplete.
ENV_LIFECYCLE = "BERTH_LIFECYCLE"
# Env berth computes per pod (or takes from the downward API); a constant value set by hand in
# the spec would give every pod the same identity.
MANAGED_ENV = frozenset(
    {
        "TF_CONFIG",
        "MASTER_ADDR",
        "MASTER_PORT",
        "RANK",
        "NODE_RANK",
        "WORLD_SIZE",
        "NNODES",
        "NPROC_PER_NODE",
        "LOCAL_WORLD_SIZE",
        "PET_MASTER_ADDR",
        "PET_MASTER_PORT",
        "PET_NODE_RANK",
        "PET_NNODES",
        "PET_NPROC_PER_NODE",
        "HOROVOD_HOSTS",
        "HOROVOD_NUM_PROC",
        "HOROVOD_HOSTNAME",
        "JAX_COORDINATOR_ADDRESS",
        "JAX_PROCESS_ID",
        "JAX_NUM_PROCESSES",
        "JAX_LOCAL_DEVICE_IDS",
        # What jax.distributed.initialize() reads with no arguments (JAX's Slurm detection).
        "SLURM_JOB_ID",
        "SLURM_STEP_NODELIST",
        "SLURM_NTASKS",
        "SLURM_PROCID",
        "SLURM_LOCALID",
        "POD_NAME",
        "POD_NAMESPACE",
        "POD_INDEX",
    }
)
