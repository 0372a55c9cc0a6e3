"""Throughput of ``berth lint`` against kubeconform on the same generated corpus.

Generates >= 20,000 resources in >= 5,000 files (workloads, services, storage, RBAC, batch and
monitoring CRDs; about 3% invalid), then times, in the same run and on the same files:

- ``berth lint --schema-only`` (strict schema validation only),
- ``berth lint`` (schemas plus every rule, cross-object ones included),
- ``kubeconform -strict -n <jobs>`` with local schemas generated from the same
  kubernetes-validate data (and the same bundled CRD schemas), so both check the same things.

Prints resources/s and the ratios against kubeconform (goal: schema-only >= 1.0x, full >= 0.5x).

    python benchmarks/lint_throughput.py [--files 5000] [--repeat 3] [--jobs 2] [--keep DIR]

``--large 2,4,8,15.5`` instead lints single multi-document files of those sizes in MiB (the same
generated resources, one ``---`` stream, under the 16 MiB input limit) and prints MiB/s,
resources/s, CPU seconds per MiB (constant when lint time is linear in the input) and the ratios
against kubeconform and against PyYAML's C loader (``yaml.load_all(..., CSafeLoader)``, parsing
only: a floor for any Python tool that reads the file), each run as its own process.

kubeconform is taken from $KUBECONFORM, PATH, or ~/.cache/berth-bench/bin, else built there with
``go install github.com/yannh/kubeconform/cmd/kubeconform@latest`` (GOBIN outside the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from berth.lint.schema import api_version_slug, bundled_schemas, resolve_version
from berth.spec.kubeschema import schema_root

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "berth-bench"
KUBECONFORM_PKG = "github.com/yannh/kubeconform/cmd/kubeconform@latest"

# --- corpus -----------------------------------------------------------------------------------


def _pod(rng: random.Random, name: str, invalid: bool) -> str:
    image = rng.choice(["pytorch/pytorch:2.5.1", "nginx:1.27", "busybox:latest", "tensorflow/tensorflow:2.17.0"])
    gpu = rng.random() < 0.4
    res = '{requests: {cpu: "2", memory: 4Gi}, limits: {memory: 8Gi}}'
    if gpu:
        res = '{requests: {cpu: "8", memory: 64Gi, nvidia.com/gpu: 1}, limits: {memory: 64Gi, nvidia.com/gpu: 1}}'
    bad = "\n        imagePullPolice: Always" if invalid else ""
    return f"""    metadata:
      labels: {{app: {name}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000}}
      containers:
      - name: main
        image: {image}{bad}
        ports: [{{containerPort: 8080, name: http}}]
        env: [{{name: MODE, value: train}}]
        resources: {res}
        volumeMounts: [{{name: data, mountPath: /data}}]
"""


def _training(rng: random.Random, name: str, invalid: bool) -> str:
    replicas = rng.choice([1, 2, 4, 8])
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: ml}}
spec:
  serviceName: {name}
  replicas: {replicas}
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: {name}}}}}
  template:
{_pod(rng, name, invalid)}  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast-{name}
      resources: {{requests: {{storage: {rng.choice([50, 100, 500])}Gi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: ml}}
spec:
  clusterIP: None
  selector: {{app: {name}}}
  ports: [{{port: 8080, name: http}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}, namespace: ml}}
spec:
  maxUnavailable: 1
  selector: {{matchLabels: {{app: {name}}}}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: fast-{name}}}
provisioner: ebs.csi.aws.com
parameters: {{type: gp3, iops: "{rng.choice([3000, 6000, 16000])}", throughput: "500", encrypted: "true"}}
volumeBindingMode: {rng.choice(["WaitForFirstConsumer", "Immediate"])}
allowVolumeExpansion: true
"""


def _app(rng: random.Random, name: str, invalid: bool) -> str:
    port = '"8080"' if invalid else "8080"
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: web}}
spec:
  replicas: {rng.choice([1, 3])}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
{_pod(rng, name, False)}      volumes: [{{name: data, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: web}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: {port}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-config, namespace: web}}
data: {{LOG_LEVEL: info, FEATURE: "on"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: web}}
"""


def _batch(rng: random.Random, name: str, invalid: bool) -> str:
    verbs = "[get, list]" if not invalid else "get"
    return f"""apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: jobs}}
spec:
  parallelism: {rng.choice([1, 2])}
  template:
{_pod(rng, name, False)}      restartPolicy: Never
      volumes: [{{name: data, persistentVolumeClaim: {{claimName: {name}-data}}}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}-data, namespace: jobs}}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: efs
  resources: {{requests: {{storage: 10Gi}}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {name}, namespace: jobs}}
rules: [{{apiGroups: [""], resources: [pods], verbs: {verbs}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: jobs}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: jobs}}]
"""


def _monitoring(rng: random.Random, name: str, invalid: bool) -> str:
    interval = "soon" if invalid else "30s"
    return f"""apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: {name}, namespace: ml}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  endpoints: [{{port: metrics, interval: {interval}}}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {{name: {name}, namespace: ml}}
spec:
  groups:
  - name: {name}
    rules: [{{alert: Stale, expr: "time() - last_success > 3600", for: 10m}}]
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {{name: {name}, namespace: ml}}
spec: {{volumeSnapshotClassName: ebs, source: {{persistentVolumeClaimName: data-{name}-0}}}}
---
apiVersion: velero.io/v1
kind: Schedule
metadata: {{name: {name}, namespace: velero}}
spec: {{schedule: "0 2 * * *", template: {{includedNamespaces: [ml], ttl: 720h}}}}
"""


GENERATORS = (_training, _app, _batch, _monitoring)


def generate(root: Path, files: int, seed: int = 7) -> int:
    """Write ``files`` manifest files of 4 resources each; returns the resource count."""
    rng = random.Random(seed)
    for i in range(files):
        gen = GENERATORS[i % len(GENERATORS)]
        name = f"{gen.__name__.strip('_')}-{i}"
        sub = root / f"team-{i % 50:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{name}.yaml").write_text(gen(rng, name, rng.random() < 0.03))
    return files * 4


# --- peers --------------------------------------------------------------------------------------


def go_peer(name: str, variable: str, package: str) -> str:
    """A Go-built peer from ``$variable``, PATH or the cache, else ``go install package`` into the cache."""
    for candidate in (os.environ.get(variable), shutil.which(name), str(CACHE / "bin" / name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    (CACHE / "bin").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(CACHE / "bin")}
    subprocess.run(["go", "install", package], check=True, env=env, cwd=tempfile.gettempdir())
    return str(CACHE / "bin" / name)


def kubeconform_binary() -> str:
    """kubeconform from $KUBECONFORM, PATH or the cache, else ``go install`` into the cache."""
    return go_peer("kubeconform", "KUBECONFORM", KUBECONFORM_PKG)


def kubeconform_command(version: str, jobs: int, work: Path) -> list[str]:
    """kubeconform, strict, on every file under ``work``, against the same schemas berth uses."""
    location = str(kubeconform_schemas(version)) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    flags = ["-strict", "-n", str(jobs), "-output", "json", "-summary", "-schema-location", location]
    return [kubeconform_binary(), *flags, str(work)]


def kubeconform_summary(proc: subprocess.CompletedProcess[str]) -> tuple[dict[str, int], int]:
    """kubeconform's JSON summary and how many objects it saw (every one must be seen for a fair run)."""
    summary: dict[str, int] = json.loads(proc.stdout)["summary"]
    return summary, sum(summary[k] for k in ("valid", "invalid", "errors", "skipped"))


def kubeconform_schemas(version: str) -> Path:
    """kubeconform's local schema layout from the same kubernetes-validate data and bundled CRDs.

    kubernetes-validate's schemas point at ``/api/_definitions.json`` under an https ``$id``; the
    copies drop the ids and point at the sibling file, so kubeconform resolves them offline.
    """
    out = CACHE / f"kubeconform-schemas-{version}"
    if (out / "_definitions.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)

    def relative(doc: dict[str, object]) -> str:
        doc.pop("$id", None)
        text = json.dumps(doc)
        for prefix in ('"/api/_definitions.json#', '"file:///api/_definitions.json#'):
            text = text.replace(prefix, '"_definitions.json#')
        return text

    for path in (schema_root() / f"v{version}.0-local-strict").iterdir():
        (out / path.name).write_text(relative(json.loads(path.read_text())))
    for (api_version, kind), schema in bundled_schemas().items():
        name = f"{kind.lower()}-{api_version_slug(api_version)}.json"
        (out / name).write_text(relative(json.loads(json.dumps(schema))))
    return out


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def timed_cpu(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU seconds (user + system of the child) of one command."""
    before = os.times()
    wall, proc = timed(cmd)
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system), proc


def large_file(path: Path, mib: float, seed: int = 7) -> int:
    """One multi-document file of about ``mib`` MiB of the corpus' resources; returns the resource count."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = index = 0
    while size < mib * 2**20:
        gen = GENERATORS[index % len(GENERATORS)]
        part = gen(rng, f"{gen.__name__.strip('_')}-{index}", rng.random() < 0.03)
        if size + len(part) + 4 > mib * 2**20:
            break
        parts.append(part)
        size += len(part) + 4
        index += 1
    path.write_text("---\n".join(parts))
    return index * 4


def large(sizes: list[float], repeat: int, jobs: int) -> int:
    """Single large files: throughput, linearity and ratios against kubeconform and PyYAML."""
    version = resolve_version(None)
    schemas = kubeconform_schemas(version)
    work = Path(tempfile.mkdtemp(prefix="berth-lint-large-"))
    load = "import sys, yaml; sum(1 for _ in yaml.load_all(open(sys.argv[1]), Loader=yaml.CSafeLoader))"
    print(f"{'MiB':>5} {'resources':>9} {'tool':26} {'wall s':>7} {'MiB/s':>6} {'res/s':>7} {'CPU s/MiB':>9}")
    try:
        rows = []
        for mib in sizes:
            path = work / f"stream-{mib:g}.yaml"
            resources = large_file(path, mib)
            real_mib = path.stat().st_size / 2**20
            berth = [sys.executable, "-m", "berth", "lint", "-j", str(jobs), "-f", "json", str(path)]
            runs = {
                "berth lint": berth,
                "berth lint --schema-only": [*berth, "--schema-only"],
                "kubeconform -strict": [
                    kubeconform_binary(),
                    "-strict",
                    "-summary",
                    "-output",
                    "json",
                    "-schema-location",
                    str(schemas) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
                    str(path),
                ],
                "PyYAML CSafeLoader load": [sys.executable, "-c", load, str(path)],
            }
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for _ in range(repeat):
                for name, cmd in runs.items():
                    wall, cpu, proc = timed_cpu(cmd)
                    if proc.returncode not in (0, 1):
                        print(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr)
                        return 2
                    samples[name].append((wall, cpu))
                    if name.startswith("kubeconform"):  # it must have seen every resource of the file
                        summary = json.loads(proc.stdout)["summary"]
                        seen = sum(summary[k] for k in ("valid", "invalid", "errors", "skipped"))
                        if seen != resources:
                            print(f"kubeconform saw {seen} resources, expected {resources}", file=sys.stderr)
                            return 2
            medians = {
                name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
                for name, got in samples.items()
            }
            for name, (wall, cpu) in medians.items():
                print(
                    f"{real_mib:5.1f} {resources:9} {name:26} {wall:7.2f} {real_mib / wall:6.2f} "
                    f"{resources / wall:7.0f} {cpu / real_mib:9.2f}"
                )
            rows.append((real_mib, medians))
        print("\nratios of berth's throughput (wall; CPU in brackets) to each peer's, same file, same run:")
        for real_mib, medians in rows:
            for name in ("berth lint", "berth lint --schema-only"):
                wall, cpu = medians[name]
                ratios = [
                    f"{peer} {medians[peer][0] / wall:.2f}x ({medians[peer][1] / cpu:.2f}x)"
                    for peer in ("kubeconform -strict", "PyYAML CSafeLoader load")
                ]
                print(f"{real_mib:5.1f} MiB {name:26} vs " + ", ".join(ratios))
        print(f"\njobs={jobs} repeat={repeat} kubernetes={version} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="write the corpus here and keep it")
    parser.add_argument("--large", help="comma-separated MiB sizes: lint one multi-document file of each size")
    args = parser.parse_args()
    if args.large:
        return large([float(m) for m in args.large.split(",")], args.repeat, args.jobs)

    version = resolve_version(None)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="berth-lint-bench-"))
    try:
        resources = generate(work, args.files)
        print(f"corpus: {resources} resources in {args.files} files under {work}")
        berth = [sys.executable, "-m", "berth", "lint", "-j", str(args.jobs), "-f", "json", str(work)]
        peer = kubeconform_command(version, args.jobs, work)
        runs = {"berth lint --schema-only": [*berth, "--schema-only"], "berth lint": berth, "kubeconform": peer}
        times: dict[str, list[float]] = {name: [] for name in runs}
        outputs: dict[str, subprocess.CompletedProcess[str]] = {}
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                seconds, proc = timed(cmd)
                if proc.returncode not in (0, 1):
                    print(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr)
                    return 2
                times[name].append(seconds)
                outputs[name] = proc
        summary, seen = kubeconform_summary(outputs["kubeconform"])
        if seen != resources:
            print(f"kubeconform saw {seen} resources, expected {resources}", file=sys.stderr)
            return 2
        schema_errors = {
            f["file"] for f in json.loads(outputs["berth lint --schema-only"].stdout) if f["rule"] == "schema-invalid"
        }
        print(
            f"invalid resources: kubeconform {summary['invalid']}, berth (files with schema errors) "
            f"{len(schema_errors)}; skipped: kubeconform {summary['skipped']}"
        )
        peer_rate = resources / statistics.median(times["kubeconform"])
        print(f"\n{'tool':28} {'median s':>9} {'resources/s':>12} {'vs kubeconform':>15}")
        for name, samples in times.items():
            rate = resources / statistics.median(samples)
            print(f"{name:28} {statistics.median(samples):9.2f} {rate:12.0f} {rate / peer_rate:14.2f}x")
        print(f"\njobs={args.jobs} repeat={args.repeat} kubernetes={version} cpus={os.cpu_count()}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
