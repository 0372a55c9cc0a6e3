"""Bad specs through the real CLI: exit 2, one located line ``file:line:col: path: message``, a hint.

Each case is a small spec (``HEADER`` + a few lines), the field path to blame, a fragment of
the message, where in the file the error must point (the token it must point at, found by
text search so the expected line:col is computed independently of the loader) and, where
berth gives one, a fragment of the hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import RunBerth
from .spec_helpers import HEADER

# A deprecation inside the loader is a bug that breaks on the next pydantic major: fail on it.
pytestmark = pytest.mark.filterwarnings("error")

# The two lines almost every valid spec needs (lines 5 and 6 of the file).
BASE = "  replicas: 2\n  image: busybox\n"
# A declared class and a volume on it (lines 7 to 10 when appended to BASE).
GP3 = "  storageClasses:\n    fast: {provider: aws-ebs, type: gp3, tier: hot}\n"


@dataclass(frozen=True)
class Bad:
    """One bad spec and what berth must say about it."""

    id: str
    body: str
    path: str
    message: str
    at: str | tuple[int, str] | None  # token (unique in the file) or (line, token); None: no position
    hint: str | None = None
    full: bool = False  # body is the whole file, not appended to HEADER

    def text(self) -> str:
        return self.body if self.full else HEADER + self.body

    def position(self) -> tuple[int, int] | None:
        """1-based line and column of the token the error must point at."""
        if self.at is None:
            return None
        lines = self.text().splitlines()
        if isinstance(self.at, tuple):
            line, token = self.at
            col = lines[line - 1].index(token)
            return line, col + 1
        hits = [(n, m.start()) for n, ln in enumerate(lines, 1) for m in re.finditer(re.escape(self.at), ln)]
        assert len(hits) == 1, f"token {self.at!r} must occur once in the case, found {hits}"
        return hits[0][0], hits[0][1] + 1


def _sc(line: str) -> str:
    """BASE plus one storage class definition and a volume using it."""
    return BASE + "  storageClasses:\n" + line + "  volumes:\n    v: {mountPath: /v, size: 1Ti, storageClass: c}\n"


CASES: list[Bad] = [
    # --- fields and types
    Bad(
        "unknown-field",
        BASE + "  comand: [python]\n",
        "spec.comand",
        "unknown field 'comand'",
        "comand",
        "did you mean 'command'?",
    ),
    Bad(
        "unknown-nested-field",
        _sc("    c: {provider: aws-ebs, iopsPerGb: 10}\n"),
        "spec.storageClasses.c.iopsPerGb",
        "unknown field 'iopsPerGb'",
        "iopsPerGb",
        "did you mean 'iopsPerGB'?",
    ),
    Bad(
        "unknown-metadata-field",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: t, namespce: ml}\nspec:\n" + BASE,
        "metadata.namespce",
        "unknown field 'namespce'",
        "namespce",
        "did you mean 'namespace'?",
        full=True,
    ),
    Bad("unknown-top-level", HEADER + BASE + "status: {}\n", "status", "unknown field 'status'", "status", full=True),
    Bad("replicas-string", '  replicas: "3"\n  image: busybox\n', "spec.replicas", "valid integer", '"3"'),
    Bad("command-not-list", BASE + "  command: python train.py\n", "spec.command", "valid list", "python train.py"),
    Bad("bool-yaml11-yes", BASE + "  networkPolicy: yes\n", "spec.networkPolicy", "valid boolean", "yes"),
    Bad("env-value-int", BASE + "  env: {WORKERS: 4}\n", "spec.env.WORKERS", "valid string", "4"),
    Bad(
        "labels-not-mapping",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: t, labels: [a, b]}\nspec:\n" + BASE,
        "metadata.labels",
        "valid dictionary",
        "[a, b]",
        full=True,
    ),
    Bad(
        "replicas-missing",
        "  image: busybox\n",
        "spec.replicas",
        "required field is missing",
        (5, "image"),
        "berth init",
    ),
    Bad("replicas-zero", "  replicas: 0\n  image: busybox\n", "spec.replicas", "greater than or equal to 1", "0"),
    Bad("port-quoted-string", BASE + '  port: "2222"\n', "spec.port", "valid integer, got '2222'", '"2222"'),
    Bad(
        "cpu-bool",
        BASE + "  resources: {requests: {cpu: true}}\n",
        "spec.resources.requests.cpu",
        "expected a quantity such as 100Gi, got bool",
        "true",
    ),
    Bad("port-out-of-range", BASE + "  port: 70000\n", "spec.port", "less than or equal to 65535", "70000"),
    Bad(
        "grace-too-short",
        BASE + "  terminationGracePeriodSeconds: 10\n",
        "spec.terminationGracePeriodSeconds",
        "greater than or equal to 30",
        "10",
    ),
    Bad("framework-unknown", BASE + "  framework: mxnet\n", "spec.framework", "'tensorflow'", "mxnet"),
    Bad(
        "spread-literal",
        BASE + "  scheduling: {spread: sometimes}\n",
        "spec.scheduling.spread",
        "'preferred'",
        "sometimes",
    ),
    Bad(
        "access-mode-literal",
        BASE + GP3 + "  volumes:\n    v: {mountPath: /v, size: 1Gi, storageClass: fast, accessMode: ReadWriteSome}\n",
        "spec.volumes.v.accessMode",
        "'ReadWriteOnce'",
        "ReadWriteSome",
    ),
    Bad(
        "percent-without-sign",
        BASE + '  disruption: {minAvailable: "50"}\n',
        "spec.disruption.minAvailable",
        "neither a count of pods nor a percentage",
        '"50"',
    ),
    Bad(
        "percent-over-100",
        BASE + '  disruption: {maxUnavailable: "150%"}\n',
        "spec.disruption.maxUnavailable",
        "from 0% to 100%",
        '"150%"',
    ),
    Bad(
        "pdb-negative",
        BASE + "  disruption: {minAvailable: -1}\n",
        "spec.disruption.minAvailable",
        "-1 is negative",
        "-1",
    ),
    # --- quantities
    Bad(
        "size-100GB",
        BASE + GP3 + "  volumes:\n    model-storage: {mountPath: /m, size: 100GB, storageClass: fast}\n",
        "spec.volumes.model-storage.size",
        "use the suffix G or Gi",
        "100GB",
    ),
    Bad(
        "memory-gb",
        BASE + "  resources: {requests: {memory: 16gb}}\n",
        "spec.resources.requests.memory",
        "not a Kubernetes quantity",
        "16gb",
    ),
    Bad(
        "size-zero",
        BASE + GP3 + "  volumes:\n    v: {mountPath: /v, size: 0Gi, storageClass: fast}\n",
        "spec.volumes.v.size",
        "greater than zero",
        "0Gi",
    ),
    Bad(
        "size-too-big-for-gp3",
        BASE + GP3 + "  volumes:\n    v: {mountPath: /v, size: 100Ti, storageClass: fast}\n",
        "spec.volumes.v.size",
        "at most 65536 GiB",
        "100Ti",
        "pick a size",
    ),
    # --- storage classes
    Bad(
        "unknown-storage-class",
        BASE + GP3 + "  volumes:\n    v: {mountPath: /v, size: 1Gi, storageClass: nvme}\n",
        "spec.volumes.v.storageClass",
        "unknown storage class 'nvme'",
        "nvme",
        "existing: true",
    ),
    Bad(
        "gp3-iops-high",
        _sc("    c: {provider: aws-ebs, type: gp3, iops: 90000}\n"),
        "spec.storageClasses.c.iops",
        "above the maximum 80000",
        "90000",
        "documented limits",
    ),
    Bad(
        "gp3-iops-low",
        _sc("    c: {provider: aws-ebs, type: gp3, iops: 2000}\n"),
        "spec.storageClasses.c.iops",
        "below the minimum 3000",
        "2000",
    ),
    Bad(
        "gp3-throughput-high",
        _sc("    c: {provider: aws-ebs, type: gp3, iops: 16000, throughput: 3000}\n"),
        "spec.storageClasses.c.throughput",
        "above the maximum 2000",
        "3000",
    ),
    Bad(
        "gp3-throughput-iops-ratio",
        _sc("    c: {provider: aws-ebs, type: gp3, iops: 3000, throughput: 1000}\n"),
        "spec.storageClasses.c.throughput",
        "ratio",
        "1000}",
        "documented limits",
    ),
    Bad(
        "io2-iops-per-gb-high",
        _sc("    c: {provider: aws-ebs, type: io2, iopsPerGB: 2000}\n"),
        "spec.storageClasses.c.iopsPerGB",
        "io2 iopsPerGB 2000 is above the maximum 1000",
        "2000",
    ),
    Bad(
        "io1-iops-per-gb-high",
        _sc("    c: {provider: aws-ebs, type: io1, iopsPerGB: 100}\n"),
        "spec.storageClasses.c.iopsPerGB",
        "io1 iopsPerGB 100 is above the maximum 50",
        "100}",
    ),
    Bad(
        "gp3-iops-per-gb",
        _sc("    c: {provider: aws-ebs, type: gp3, iopsPerGB: 10}\n"),
        "spec.storageClasses.c.iopsPerGB",
        "applies to io1/io2",
        "10}",
    ),
    Bad(
        "io2-iops-per-gb-too-few",
        BASE + "  storageClasses:\n    c: {provider: aws-ebs, type: io2, iopsPerGB: 1}\n"
        "  volumes:\n    v: {mountPath: /v, size: 4Gi, storageClass: c}\n",
        "spec.volumes.v.size",
        "below the io2 minimum 100",
        "4Gi",
    ),
    Bad(
        "ebs-bad-type",
        _sc("    c: {provider: aws-ebs, type: pd-ssd}\n"),
        "spec.storageClasses.c.type",
        "'pd-ssd' is not a aws-ebs disk type",
        "pd-ssd",
        "gp3",
    ),
    Bad(
        "gcp-bad-type",
        _sc("    c: {provider: gcp-pd, type: gp3}\n"),
        "spec.storageClasses.c.type",
        "'gp3' is not a gcp-pd disk type",
        "gp3}",
        "hyperdisk-balanced",
    ),
    Bad(
        "azure-bad-type",
        _sc("    c: {provider: azure-disk, type: Premium_SSD}\n"),
        "spec.storageClasses.c.type",
        "not a azure-disk disk type",
        "Premium_SSD",
        "PremiumV2_LRS",
    ),
    Bad(
        "azure-iops-needs-v2",
        _sc("    c: {provider: azure-disk, type: Premium_LRS, iops: 5000}\n"),
        "spec.storageClasses.c.iops",
        "only on PremiumV2_LRS and UltraSSD_LRS",
        "5000",
    ),
    Bad(
        "nfs-takes-no-iops",
        BASE + "  storageClasses:\n    c: {provider: nfs, server: s, share: /x, iops: 100}\n",
        "spec.storageClasses.c.iops",
        "provider nfs does not take iops",
        "100}",
        "server, share",
    ),
    Bad(
        "nfs-needs-server",
        BASE + "  storageClasses:\n    c: {provider: nfs, share: /x}\n",
        "spec.storageClasses.c.server",
        "provider nfs needs server",
        (8, "{provider"),
        "add server",
    ),
    Bad(
        "csi-needs-provisioner",
        BASE + "  storageClasses:\n    c: {provider: csi, parameters: {a: b}}\n",
        "spec.storageClasses.c.provisioner",
        "needs provisioner",
        (8, "{provider"),
    ),
    Bad(
        "missing-provider",
        _sc("    c: {type: gp3, tier: hot}\n"),
        "spec.storageClasses.c.provider",
        "needs a provider",
        (8, "{type"),
        "existing: true",
    ),
    Bad("unknown-provider", _sc("    c: {provider: aws}\n"), "spec.storageClasses.c.provider", "'aws-ebs'", "aws}"),
    Bad(
        "existing-with-settings",
        _sc("    c: {existing: true, type: gp3}\n"),
        "spec.storageClasses.c.type",
        "existing class is used as it is",
        "gp3",
        "remove `existing: true`",
    ),
    Bad(
        "local-immediate",
        BASE + "  storageClasses:\n    c: {provider: local, volumeBindingMode: Immediate}\n",
        "spec.storageClasses.c.volumeBindingMode",
        "must bind after scheduling",
        "Immediate",
        "WaitForFirstConsumer",
    ),
    # --- volumes
    Bad(
        "duplicate-mount-path",
        BASE + GP3 + "  volumes:\n    a: {mountPath: /data, size: 1Gi, storageClass: fast}\n"
        "    b: {mountPath: /data/, size: 1Gi, storageClass: fast}\n",
        "spec.volumes.b.mountPath",
        "mount path /data is already used by volumes.a",
        "/data/",
        "own mount path",
    ),
    Bad(
        "duplicate-mount-shared",
        BASE + GP3 + "  volumes:\n    a: {mountPath: /data, size: 1Gi, storageClass: fast}\n"
        "  sharedVolumes:\n    d: {claimName: d, mountPath: /data, size: 1Ti}\n",
        "spec.sharedVolumes.d.mountPath",
        "already used by volumes.a",
        (12, "/data"),
    ),
    Bad(
        "relative-mount-path",
        BASE + GP3 + "  volumes:\n    a: {mountPath: data, size: 1Gi, storageClass: fast}\n",
        "spec.volumes.a.mountPath",
        "not an absolute path",
        "data,",
    ),
    Bad(
        "two-checkpoint-volumes",
        BASE + GP3 + "  volumes:\n"
        "    a: {mountPath: /a, size: 1Gi, storageClass: fast, checkpoints: true}\n"
        "    b: {mountPath: /b, size: 1Gi, storageClass: fast, checkpoints: true}\n",
        "spec.volumes.b.checkpoints",
        "only one volume can hold checkpoints",
        (11, "true"),
        "a already does",
    ),
    Bad(
        "volume-name-shared-too",
        BASE + GP3 + "  volumes:\n    d: {mountPath: /a, size: 1Gi, storageClass: fast}\n"
        "  sharedVolumes:\n    d: {claimName: d, mountPath: /b, size: 1Ti}\n",
        "spec.sharedVolumes.d",
        "pod volume names must be unique",
        (12, "{claimName"),
        "rename",
    ),
    Bad(
        "rwo-shared-many-replicas",
        BASE + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, size: 1Ti, accessMode: ReadWriteOnce}\n",
        "spec.sharedVolumes.d.accessMode",
        "Multi-Attach",
        "ReadWriteOnce",
        "ReadWriteMany",
    ),
    Bad(
        "rox-writable",
        BASE + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, size: 1Ti, readOnly: false}\n",
        "spec.sharedVolumes.d.readOnly",
        "cannot be mounted writable",
        "false",
        "drop readOnly",
    ),
    Bad(
        "shared-missing-size",
        BASE + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d}\n",
        "spec.sharedVolumes.d.size",
        "needs a size",
        (8, "{claimName"),
        "size: 1Ti",
    ),
    Bad(
        "existing-claim-with-size",
        BASE + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, existing: true, size: 1Ti}\n",
        "spec.sharedVolumes.d.existing",
        "only mounted",
        "true",
    ),
    # --- resources and disruption
    Bad(
        "gpu-request-not-limit",
        BASE + "  resources:\n    requests: {nvidia.com/gpu: 1}\n    limits: {nvidia.com/gpu: 2}\n",
        "spec.resources.requests.nvidia.com/gpu",
        "must equal its limit",
        (8, "1"),
        "set both to 2",
    ),
    Bad(
        "request-over-limit",
        BASE + "  resources:\n    requests: {cpu: 8}\n    limits: {cpu: 4}\n",
        "spec.resources.requests.cpu",
        "larger than its limit",
        (8, "8"),
        "lower the request",
    ),
    Bad(
        "min-available-all",
        BASE.replace("2", "3") + "  disruption: {minAvailable: 3}\n",
        "spec.disruption.minAvailable",
        "blocks every node drain",
        (7, "3"),
        "at most 2",
    ),
    Bad(
        "min-available-single-replica",
        BASE.replace("2", "1") + "  disruption: {minAvailable: 1}\n",
        "spec.disruption.minAvailable",
        "blocks every node drain",
        (7, "1}"),
        "maxUnavailable: 1",
    ),
    Bad(
        "service-monitor-without-prometheus",
        BASE + "  monitoring: {prometheus: false, serviceMonitor: true}\n",
        "spec.monitoring.serviceMonitor",
        "needs the metrics port",
        "true}",
        "prometheus: true",
    ),
    Bad(
        "nfs-shared-volume-with-class",
        BASE + "  sharedVolumes:\n    d: {claimName: d, mountPath: /d, size: 1Ti, "
        "storageClass: nfs-client,\n        nfs: {server: 10.0.0.1, path: /export}}\n",
        "spec.sharedVolumes.d.storageClass",
        "uses no storage class",
        "nfs-client",
        "remove storageClass",
    ),
    Bad(
        "pdb-both-fields",
        BASE + "  disruption: {minAvailable: 1, maxUnavailable: 1}\n",
        "spec.disruption",
        "not both",
        "{minAvailable",
    ),
    Bad(
        "max-unavailable-zero",
        BASE + "  disruption: {maxUnavailable: 0}\n",
        "spec.disruption.maxUnavailable",
        "allows no voluntary disruption",
        "0}",
    ),
    # --- env and rendezvous
    Bad(
        "env-tf-config",
        BASE + "  env: {TF_CONFIG: '{}'}\n",
        "spec.env.TF_CONFIG",
        "computed by berth",
        "'{}'",
        "berth render",
    ),
    Bad("env-rank", BASE + "  env: {RANK: '0'}\n", "spec.env.RANK", "same identity", "'0'"),
    Bad("env-berth-prefix", BASE + "  env: {BERTH_PORT: '1'}\n", "spec.env.BERTH_PORT", "computed by berth", "'1'"),
    Bad("env-bad-name", BASE + "  env: {1BAD: x}\n", "spec.env", "not a valid environment variable name", "{1BAD"),
    Bad(
        "framework-without-command",
        BASE + "  framework: pytorch\n",
        "spec.command",
        "needs the training command",
        (5, "replicas"),
        "command:",
    ),
    Bad(
        "metrics-port-is-port",
        BASE + "  port: 9400\n",
        "spec.metricsPort",
        "also the training port",
        (5, "replicas"),
        "another metrics port",
    ),
    # --- backup, archive, scheduling
    Bad(
        "cron-four-fields",
        BASE + GP3 + "  volumes:\n    v: {mountPath: /v, size: 1Gi, storageClass: fast}\n"
        '  backup: {schedule: "0 2 * *"}\n',
        "spec.backup.schedule",
        "not a cron schedule",
        '"0 2 * *"',
    ),
    Bad(
        "cron-minute-61",
        BASE + "  backup: {schedule: '61 2 * * *', snapshotVolumes: false}\n",
        "spec.backup.schedule",
        "minute '61' is outside 0-59",
        "'61 2 * * *'",
    ),
    Bad(
        "cron-month-name",
        BASE + "  backup: {schedule: '0 2 1 jna *', snapshotVolumes: false}\n",
        "spec.backup.schedule",
        "month 'jna' is outside 1-12",
        "'0 2 1 jna *'",
    ),
    Bad(
        "checkpoint-path-ephemeral",
        BASE + GP3 + "  volumes:\n"
        "    v: {mountPath: /ckpt, size: 1Gi, storageClass: fast}\n"
        "  checkpointPath: /ckpt-old/run\n",
        "spec.checkpointPath",
        "not on any volume",
        "/ckpt-old/run",
        "under the mountPath",
    ),
    Bad(
        "duration-days",
        BASE + "  backup: {schedule: '@daily', ttl: 30d, snapshotVolumes: false}\n",
        "spec.backup.ttl",
        "not a duration",
        "30d",
    ),
    Bad(
        "backup-nothing-to-snapshot",
        BASE + "  backup: {schedule: '@daily'}\n",
        "spec.backup.snapshotVolumes",
        "no volumes to snapshot",
        (7, "{schedule"),
        "snapshotVolumes: false",
    ),
    Bad(
        "archive-url-https",
        BASE + "  archive: {url: 'https://bucket/x', secretName: s3}\n",
        "spec.archive.url",
        "pattern",
        "'https://bucket/x'",
    ),
    Bad(
        "archive-missing-secret",
        BASE + "  archive: {url: 's3://bucket/x'}\n",
        "spec.archive",
        "the archive has no credentials: neither secretName nor spec.identity",
        "{url",
    ),
    Bad(
        "archive-endpoint-not-url",
        BASE + "  archive: {url: 's3://bucket/x', secretName: s3, endpoint: minio:9000}\n",
        "spec.archive.endpoint",
        "not an http(s) URL",
        "minio:9000",
    ),
    Bad(
        "toleration-exists-value",
        BASE + "  scheduling:\n    tolerations:\n      - {key: gpu, operator: Exists, value: x}\n",
        "spec.scheduling.tolerations[0].value",
        "operator Exists takes no value",
        "x}",
    ),
    # --- names
    Bad(
        "name-uppercase",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: ML_Training}\nspec:\n" + BASE,
        "metadata.name",
        "not a DNS-1123 label",
        "ML_Training",
        full=True,
    ),
    Bad(
        "name-too-long",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: " + "a" * 53 + "}\nspec:\n" + BASE,
        "metadata.name",
        "longer than 52 characters",
        "a" * 53,
        full=True,
    ),
    Bad(
        "volume-name-key",
        BASE + GP3 + "  volumes:\n    Model_Storage: {mountPath: /m, size: 1Gi, storageClass: fast}\n",
        "spec.volumes.Model_Storage",
        "invalid name",
        "Model_Storage",
    ),
    Bad(
        "claim-name-spaces",
        BASE + "  sharedVolumes:\n    d: {claimName: Shared Data, mountPath: /d, size: 1Ti}\n",
        "spec.sharedVolumes.d.claimName",
        "DNS-1123 subdomain",
        "Shared Data",
    ),
    Bad(
        "service-name-digit",
        BASE + "  serviceName: 2222-workers\n",
        "spec.serviceName",
        "must start with a letter",
        "2222-workers",
        "DNS-1035",
    ),
    Bad(
        "cluster-name-digit-is-service-name",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\nmetadata: {name: 3d-unet}\nspec:\n" + BASE,
        "metadata.name",
        "must start with a letter",
        "3d-unet",
        "spec.serviceName",
        full=True,
    ),
    Bad(
        "label-value-space",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\n"
        'metadata: {name: t, labels: {team: "ml team"}}\nspec:\n' + BASE,
        "metadata.labels.team",
        "not a valid label value",
        '"ml team"',
        full=True,
    ),
    Bad(
        "label-key-bad",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingCluster\n"
        "metadata: {name: t, labels: {-team/x: a}}\nspec:\n" + BASE,
        "metadata.labels.-team/x",
        "invalid name",
        "-team/x",
        full=True,
    ),
    Bad(
        "node-selector-value",
        BASE + "  scheduling: {nodeSelector: {gpu: 'a100 80gb'}}\n",
        "spec.scheduling.nodeSelector.gpu",
        "not a valid label value",
        "'a100 80gb'",
    ),
    Bad(
        "duplicate-claim-name",
        BASE + "  sharedVolumes:\n    a: {claimName: data, mountPath: /a, size: 1Ti}\n"
        "    b: {claimName: data, mountPath: /b, size: 2Ti}\n",
        "spec.sharedVolumes.b.claimName",
        "already used by sharedVolumes.a",
        (9, "data"),
        "one claim",
    ),
    Bad(
        "cpu-infinite",
        BASE + "  resources: {limits: {cpu: .inf}}\n",
        "spec.resources.limits.cpu",
        "not a Kubernetes quantity",
        ".inf",
    ),
    Bad(
        "service-name-dots", BASE + "  serviceName: svc.example\n", "spec.serviceName", "DNS-1123 label", "svc.example"
    ),
    # --- the document itself
    Bad(
        "duplicate-yaml-key",
        "  replicas: 2\n  image: busybox\n  replicas: 3\n",
        "<document>",
        "duplicate key",
        (7, "replicas"),
        "remove one",
    ),
    Bad("invalid-yaml", "  replicas: 2\n  image: [busybox\n", "<document>", "invalid YAML", None),
    Bad("empty-file", "", "<document>", "the file is empty", None, "berth init", full=True),
    Bad("comments-only", "# nothing here yet\n", "<document>", "the file is empty", None, full=True),
    Bad(
        "two-documents",
        HEADER + BASE + "---\n" + HEADER + BASE,
        "<document>",
        "expected one document, found 2",
        None,
        "one spec per file",
        full=True,
    ),
    Bad("not-a-mapping", "- a\n- b\n", "<document>", "a spec is a YAML mapping", (1, "-"), "berth init", full=True),
    Bad(
        "wrong-kind",
        "apiVersion: berth.dev/v1alpha1\nkind: Deployment\nmetadata: {name: t}\nspec:\n" + BASE,
        "kind",
        "kind: TrainingCluster",
        "Deployment",
        "berth lint",
        full=True,
    ),
    Bad(
        "wrong-api-version",
        "apiVersion: berth.dev/v1\nkind: TrainingCluster\nmetadata: {name: t}\nspec:\n" + BASE,
        "apiVersion",
        "expected apiVersion: berth.dev/v1alpha1",
        "berth.dev/v1",
        "did you mean apiVersion: berth.dev/v1alpha1?",
        full=True,
    ),
    Bad(
        "mistyped-kind",
        "apiVersion: berth.dev/v1alpha1\nkind: TrainingClustr\nmetadata: {name: t}\nspec:\n" + BASE,
        "kind",
        "kind: TrainingCluster",
        "TrainingClustr",
        "did you mean kind: TrainingCluster?",
        full=True,
    ),
]


def test_cases_are_distinct() -> None:
    """At least 30 distinct bad specs (the issue's floor), no two with the same text or id."""
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.text() for c in CASES}) == len(CASES)


def _located(stderr: str, filename: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{filename}:") or ln.startswith(f"{filename} ")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_spec_gives_one_located_line(case: Bad, berth: RunBerth, write_spec: Callable[[str], Path]) -> None:
    path = write_spec(case.text())
    result = berth("render", str(path))
    assert result.code == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    located = _located(result.stderr, str(path))
    assert len(located) == 1, result.stderr
    pos = case.position()
    where = f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)
    line = located[0]
    if case.at is None and case.id == "invalid-yaml":
        # Where the parser notices the missing ']' is its business; the line must still be located.
        assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: <document>: ", line), line
    else:
        assert line.startswith(f"{where}: {case.path}: "), f"expected {where}: {case.path}: …\ngot {line}"
    assert case.message in line, line
    hints = [ln for ln in result.stderr.splitlines() if ln.startswith("  hint: ")]
    if case.hint is not None:
        assert len(hints) == 1 and case.hint in hints[0], result.stderr
    assert len(result.stderr.splitlines()) == 1 + len(hints), result.stderr


def test_missing_file(berth: RunBerth, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = berth("render", str(missing))
    assert result.code == 2
    assert result.stderr.splitlines() == [f"{missing}: <document>: file not found", "  hint: check the path"]


def test_every_problem_is_reported_with_a_count(berth: RunBerth, write_spec: Callable[[str], Path]) -> None:
    """Several independent mistakes: each located on its own line, then the count."""
    path = write_spec(HEADER + "  replicas: 0\n  image: busybox\n  comand: [x]\n  port: 0\n")
    result = berth("render", str(path))
    assert result.code == 2
    located = _located(result.stderr, str(path))
    found = sorted((ln.split(": ")[0], ln.split(": ")[1]) for ln in located)
    assert found == [(f"{path}:5:13", "spec.replicas"), (f"{path}:7:3", "spec.comand"), (f"{path}:8:9", "spec.port")]
    assert result.stderr.splitlines()[-1] == f"3 problems in {path}"
