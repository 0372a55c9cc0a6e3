"""``berth lint`` on a corpus laid out like real repositories, against kubeconform and kube-score.

The corpus is generated (nothing third-party is shipped, so no licence to carry): ``--repos``
repositories, each with applications in their own directories as people lay them out:

- ``apps/<app>/`` with one small file per object (Deployment or StatefulSet, Service,
  ConfigMap, Secret, ServiceAccount, Ingress, HPA, PDB, NetworkPolicy, Role/RoleBinding) and a
  ``kustomization.yaml``; some apps have ``overlays/prod/`` with a kustomize patch;
- ``rendered/<chart>.yaml``: Helm-rendered multi-document streams (``# Source:`` comments,
  10-40 objects);
- ``batch/``: Jobs and CronJobs; ``training/``: JobSet, PyTorchJob, RayCluster, TrainJob CRs;
  ``monitoring/``: ServiceMonitor, PrometheusRule; ``backup/``: Velero Schedule and Backup;
- ``crds/``: CustomResourceDefinitions themselves, a few of them upstream-sized (the pod
  template schema inlined, 100-400 KiB, as operators' generated CRDs are).

File sizes follow real repositories: most files are a few hundred bytes, a few are large.
About 3% of objects carry a mistake (an unknown field, a string port, a bad label value).

Times, interleaved in the same run over the same files:

- ``berth lint --schema-only`` against ``kubeconform -strict`` with the same schemas (goal >= 1.5x);
- ``berth lint`` (schemas and every rule) against ``kube-score score`` (goal >= 1.0x).
  kube-linter, the issue's named peer, cannot be obtained here (its Go module is not served);
  kube-score stands in: a Go static linter that runs all its checks on every object.

``--profile`` instead prints where berth's time goes on the corpus: interpreter and import
start-up, pool spin-up, per-kind schema compile, loading, validation and rules per file.

    python benchmarks/lint_corpus.py [--repos 40] [--repeat 3] [--jobs 2] [--keep DIR] [--profile]

kube-score is taken from $KUBE_SCORE, PATH or ~/.cache/berth-bench/bin, else built there with
``go install github.com/zegl/kube-score/cmd/kube-score@v1.20.0``.
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
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from lint_throughput import go_peer, kubeconform_command, kubeconform_summary, timed_cpu

from berth.lint.schema import resolve_version
from berth.spec.kubeschema import schema_root

KUBE_SCORE_PKG = "github.com/zegl/kube-score/cmd/kube-score@v1.20.0"
IMAGES = ("nginx:1.27.3", "redis:7.4.1", "postgres:16.6", "ghcr.io/acme/api:v2.3.1", "pytorch/pytorch:2.5.1")


class Corpus:
    """Writes files and counts the objects in them."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.files = 0
        self.objects = 0
        self.kinds: Counter[str] = Counter()
        self.sizes: list[int] = []

    def bad(self) -> bool:
        return self.rng.random() < 0.03

    def write(self, rel: str, docs: list[str], header: str = "") -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = header + "\n---\n".join(d.strip("\n") + "\n" for d in docs)
        path.write_text(text)
        self.files += 1
        self.sizes.append(len(text))
        for doc in docs:
            for line in doc.splitlines():
                if line.startswith("kind: "):
                    self.kinds[line[6:].strip()] += 1
                    self.objects += 1
                    break


def _meta(name: str, ns: str | None, app: str, extra: str = "") -> str:
    ns_line = f"\n  namespace: {ns}" if ns else ""
    return (
        f"metadata:\n  name: {name}{ns_line}\n  labels:\n    app.kubernetes.io/name: {app}\n"
        f"    app.kubernetes.io/part-of: {app}{extra}\n"
    )


def _container(c: Corpus, name: str, port: int, indent: str) -> str:
    rng = c.rng
    bad = f"\n{indent}  imagePullPolice: Always" if c.bad() else ""
    env = "".join(f'\n{indent}  - {{name: VAR_{i}, value: "{rng.randint(0, 99)}"}}' for i in range(rng.randint(0, 4)))
    env_block = f"\n{indent}  env:{env}" if env else ""
    return (
        f"{indent}- name: {name}\n{indent}  image: {rng.choice(IMAGES)}{bad}\n"
        f"{indent}  ports:\n{indent}  - {{name: http, containerPort: {port}}}{env_block}\n"
        f"{indent}  resources:\n{indent}    requests: {{cpu: {rng.choice(['100m', '250m', '1'])}, memory: "
        f"{rng.choice(['128Mi', '256Mi', '1Gi'])}}}\n{indent}    limits: {{memory: {rng.choice(['256Mi', '2Gi'])}}}\n"
        f"{indent}  readinessProbe:\n{indent}    httpGet: {{path: /healthz, port: http}}\n"
        f"{indent}  securityContext:\n{indent}    runAsNonRoot: true\n{indent}    allowPrivilegeEscalation: false\n"
        f"{indent}    readOnlyRootFilesystem: true\n{indent}    capabilities: {{drop: [ALL]}}\n"
    )


def _workload(c: Corpus, app: str, ns: str, port: int) -> str:
    sts = c.rng.random() < 0.2
    kind = "StatefulSet" if sts else "Deployment"
    extra = f"  serviceName: {app}\n" if sts else ""
    claims = (
        "  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n"
        "      resources: {requests: {storage: 10Gi}}\n"
        if sts
        else ""
    )
    return (
        f"apiVersion: apps/v1\nkind: {kind}\n{_meta(app, ns, app)}spec:\n  replicas: {c.rng.choice([1, 2, 3])}\n"
        f"{extra}  selector:\n    matchLabels: {{app.kubernetes.io/name: {app}}}\n  template:\n"
        f"    metadata:\n      labels: {{app.kubernetes.io/name: {app}}}\n    spec:\n"
        f"      serviceAccountName: {app}\n      containers:\n{_container(c, app, port, '      ')}{claims}"
    )


def _app_objects(c: Corpus, app: str, ns: str) -> dict[str, str]:
    """One application's objects, one per file name, as a kustomize base holds them."""
    rng = c.rng
    port = rng.choice([8080, 3000, 9000])
    target = '"http-x"' if c.bad() else "http"
    out = {
        "deployment.yaml": _workload(c, app, ns, port),
        "service.yaml": f"apiVersion: v1\nkind: Service\n{_meta(app, ns, app)}spec:\n"
        f"  selector: {{app.kubernetes.io/name: {app}}}\n"
        f"  ports:\n  - {{name: http, port: 80, targetPort: {target}}}\n",
        "serviceaccount.yaml": f"apiVersion: v1\nkind: ServiceAccount\n{_meta(app, ns, app)}",
        "configmap.yaml": f"apiVersion: v1\nkind: ConfigMap\n{_meta(app + '-config', ns, app)}data:\n"
        + "".join(f"  KEY_{i}: value-{rng.randint(0, 999)}\n" for i in range(rng.randint(1, 12))),
    }
    if rng.random() < 0.5:
        value = "bad value!" if c.bad() else app
        out["secret.yaml"] = (
            f"apiVersion: v1\nkind: Secret\n{_meta(app, ns, value)}type: Opaque\n"
            "stringData: {DATABASE_URL: postgres://db:5432/app}\n"
        )
    if rng.random() < 0.5:
        out["ingress.yaml"] = (
            f"apiVersion: networking.k8s.io/v1\nkind: Ingress\n{_meta(app, ns, app)}spec:\n"
            f"  ingressClassName: nginx\n  rules:\n  - host: {app}.example.com\n    http:\n      paths:\n"
            f"      - path: /\n        pathType: Prefix\n        backend:\n"
            f"          service: {{name: {app}, port: {{name: http}}}}\n"
        )
    if rng.random() < 0.4:
        out["hpa.yaml"] = (
            f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n{_meta(app, ns, app)}spec:\n"
            f"  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {app}}}\n"
            "  minReplicas: 2\n  maxReplicas: 10\n  metrics:\n  - type: Resource\n"
            "    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}\n"
        )
    if rng.random() < 0.4:
        out["pdb.yaml"] = (
            f"apiVersion: policy/v1\nkind: PodDisruptionBudget\n{_meta(app, ns, app)}spec:\n"
            f"  maxUnavailable: 1\n  selector:\n    matchLabels: {{app.kubernetes.io/name: {app}}}\n"
        )
    if rng.random() < 0.3:
        out["networkpolicy.yaml"] = (
            f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{_meta(app, ns, app)}spec:\n"
            f"  podSelector:\n    matchLabels: {{app.kubernetes.io/name: {app}}}\n  policyTypes: [Ingress]\n"
            f"  ingress:\n  - from:\n    - podSelector: {{matchLabels: {{app.kubernetes.io/name: gateway}}}}\n"
            f"    ports:\n    - {{protocol: TCP, port: {port}}}\n"
        )
    if rng.random() < 0.3:
        verbs = "get" if c.bad() else "[get, list, watch]"
        out["rbac.yaml"] = (
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n{_meta(app, ns, app)}rules:\n"
            f'- apiGroups: [""]\n  resources: [configmaps, pods]\n  verbs: {verbs}\n---\n'
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n{_meta(app, ns, app)}"
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {app}}}\n"
            f"subjects:\n- {{kind: ServiceAccount, name: {app}, namespace: {ns}}}\n"
        )
    return out


def _app_dir(c: Corpus, base: str, app: str, ns: str) -> None:
    objects = _app_objects(c, app, ns)
    for name, text in objects.items():
        c.write(f"{base}/{name}", text.split("---\n"))
    resources = "".join(f"- {name}\n" for name in objects)
    c.write(
        f"{base}/kustomization.yaml",
        [f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {ns}\nresources:\n{resources}"],
    )
    if c.rng.random() < 0.3:
        overlay = base.replace("/base", "") + "/overlays/prod"
        c.write(
            f"{overlay}/kustomization.yaml",
            [
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\n"
                "patches:\n- path: patch-replicas.yaml\n"
            ],
        )
        c.write(
            f"{overlay}/patch-replicas.yaml",
            [f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {app}}}\nspec:\n  replicas: 5\n"],
        )


def _rendered(c: Corpus, chart: str, ns: str) -> None:
    """A Helm-rendered stream: every object of a few components, ``# Source:`` before each."""
    docs = []
    for component in range(c.rng.randint(2, 5)):
        app = f"{chart}-c{component}"
        for name, text in _app_objects(c, app, ns).items():
            for part in text.split("---\n"):
                docs.append(f"# Source: {chart}/templates/{name}\n{part}")
    c.write(f"rendered/{chart}.yaml", docs)


def _batch(c: Corpus, name: str, ns: str) -> None:
    pod = f"      restartPolicy: OnFailure\n      containers:\n{_container(c, 'task', 8080, '      ')}"
    job = f"apiVersion: batch/v1\nkind: Job\n{_meta(name, ns, name)}spec:\n  backoffLimit: 3\n"
    job += f"  template:\n    spec:\n{pod}"
    indented = "".join("    " + line + "\n" for line in pod.splitlines())
    cron = (
        f"apiVersion: batch/v1\nkind: CronJob\n{_meta(name + '-nightly', ns, name)}spec:\n"
        f'  schedule: "{c.rng.randint(0, 59)} 2 * * *"\n  concurrencyPolicy: Forbid\n  jobTemplate:\n'
        f"    spec:\n      template:\n        spec:\n{indented}"
    )
    c.write(f"batch/{name}-job.yaml", [job])
    c.write(f"batch/{name}-cronjob.yaml", [cron])


def _training(c: Corpus, name: str, ns: str) -> None:
    gpu = '      resources:\n        limits: {nvidia.com/gpu: 8, cpu: "32", memory: 256Gi}\n'
    pod = (
        "        spec:\n          containers:\n          - name: trainer\n            image: pytorch/pytorch:2.5.1\n"
        "            command: [torchrun, train.py]\n" + "".join("      " + line + "\n" for line in gpu.splitlines())
    )
    workers = c.rng.choice([2, 4, 8])
    kinds = {
        "jobset": f"apiVersion: jobset.x-k8s.io/v1alpha2\nkind: JobSet\n{_meta(name, ns, name)}spec:\n"
        f"  replicatedJobs:\n  - name: workers\n    replicas: 1\n    template:\n      spec:\n"
        f"        parallelism: {workers}\n        completions: {workers}\n        backoffLimit: 0\n        template:\n"
        + "".join("    " + line + "\n" for line in pod.splitlines()),
        "pytorchjob": f"apiVersion: kubeflow.org/v1\nkind: PyTorchJob\n{_meta(name, ns, name)}spec:\n"
        f"  pytorchReplicaSpecs:\n    Master:\n      replicas: 1\n      restartPolicy: OnFailure\n      template:\n"
        f"{pod.replace('trainer', 'pytorch')}    Worker:\n      replicas: {workers}\n      restartPolicy: OnFailure\n"
        f"      template:\n{pod.replace('trainer', 'pytorch')}",
        "raycluster": f"apiVersion: ray.io/v1\nkind: RayCluster\n{_meta(name, ns, name)}spec:\n"
        f"  headGroupSpec:\n    rayStartParams: {{dashboard-host: 0.0.0.0}}\n    template:\n{pod}"
        f"  workerGroupSpecs:\n  - groupName: gpu\n    replicas: {workers}\n    minReplicas: 1\n"
        f"    maxReplicas: 16\n    rayStartParams: {{}}\n    template:\n{pod}",
    }
    kind = c.rng.choice(sorted(kinds))
    c.write(f"training/{name}-{kind}.yaml", [kinds[kind]])


def _monitoring(c: Corpus, name: str, ns: str) -> None:
    interval = "soon" if c.bad() else "30s"
    c.write(
        f"monitoring/{name}-servicemonitor.yaml",
        [
            f"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n{_meta(name, ns, name)}spec:\n"
            f"  selector:\n    matchLabels: {{app.kubernetes.io/name: {name}}}\n"
            f"  endpoints:\n  - {{port: http, path: /metrics, interval: {interval}}}\n"
        ],
    )
    if c.rng.random() < 0.5:
        c.write(
            f"monitoring/{name}-rules.yaml",
            [
                f"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n{_meta(name, ns, name)}spec:\n"
                f"  groups:\n  - name: {name}\n    rules:\n"
                f'    - alert: {name.title().replace("-", "")}Down\n      expr: up{{job="{name}"}} == 0\n'
                "      for: 5m\n      labels: {severity: critical}\n"
            ],
        )


def _backup(c: Corpus, name: str, ns: str) -> None:
    c.write(
        f"backup/{name}-schedule.yaml",
        [
            f"apiVersion: velero.io/v1\nkind: Schedule\n{_meta(name, 'velero', name)}spec:\n"
            f'  schedule: "0 {c.rng.randint(0, 5)} * * *"\n  template:\n    includedNamespaces: [{ns}]\n'
            "    ttl: 720h0m0s\n    snapshotVolumes: true\n"
        ],
    )


def _inline(node: Any, defs: dict[str, Any], depth: int) -> Any:
    """A schema with its ``$ref``s replaced by the definitions, as controller-gen inlines them."""
    if isinstance(node, list):
        return [_inline(item, defs, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if depth <= 0 or name not in defs:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return _inline(defs[name], defs, depth - 1)
    keep = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type")
    out = {k: _inline(v, defs, depth) for k, v in node.items() if not k.startswith("x-kubernetes-") or k in keep}
    if isinstance(out.get("type"), list):  # JSON schema's [T, "null"] is OpenAPI's nullable T
        out["type"] = next(t for t in out["type"] if t != "null")
        out["nullable"] = True
    if "allOf" in out or "oneOf" in out or "anyOf" in out:
        out.pop("allOf", None)
        out.pop("oneOf", None)
        out.pop("anyOf", None)
        out.setdefault("x-kubernetes-int-or-string", True)
    return out


def _crds(c: Corpus, repo: int) -> None:
    """CustomResourceDefinitions: small ones, and for some repositories an upstream-sized one."""
    group = f"repo{repo}.example.com"
    for i in range(c.rng.randint(1, 3)):
        kind = f"Widget{i}"
        c.write(
            f"crds/{kind.lower()}.yaml",
            [
                f"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                f"metadata: {{name: {kind.lower()}s.{group}}}\nspec:\n  group: {group}\n"
                f"  names: {{kind: {kind}, plural: {kind.lower()}s}}\n  scope: Namespaced\n  versions:\n"
                "  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
                "        type: object\n        properties:\n          spec:\n            type: object\n"
                "            properties:\n              size: {type: integer}\n              image: {type: string}\n"
            ],
        )
    if repo % 4 == 0:
        defs = _definitions()
        template = _inline(defs["io.k8s.api.core.v1.PodTemplateSpec"], defs, 4 + repo % 3)
        schema = {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "template": template}}
            },
        }
        version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"runners.{group}"},
            "spec": {"group": group, "names": {"kind": "Runner", "plural": "runners"}, "scope": "Namespaced"},
        }
        crd["spec"]["versions"] = [version]  # type: ignore[index]
        c.write("crds/runners.yaml", [yaml.safe_dump(crd, sort_keys=False, width=120)])


_DEFS: dict[str, Any] = {}


def _definitions() -> dict[str, Any]:
    if not _DEFS:
        path = schema_root() / f"v{resolve_version(None)}.0-local-strict" / "_definitions.json"
        _DEFS.update(json.loads(path.read_text())["$defs"])
    return _DEFS


def generate(root: Path, repos: int, seed: int = 12) -> Corpus:
    """Write ``repos`` repositories under ``root``."""
    corpus = Corpus(root, seed)
    for r in range(repos):
        sub = Corpus(root / f"repo-{r:02d}", seed + r)
        ns = f"team-{r}"
        for a in range(sub.rng.randint(4, 12)):
            _app_dir(sub, f"apps/app{a}/base" if sub.rng.random() < 0.3 else f"apps/app{a}", f"app{a}", ns)
        for chart in range(sub.rng.randint(0, 2)):
            _rendered(sub, f"chart{chart}", ns)
        for j in range(sub.rng.randint(0, 4)):
            _batch(sub, f"job{j}", ns)
        for t in range(sub.rng.randint(0, 3)):
            _training(sub, f"train{t}", ns)
        for m in range(sub.rng.randint(0, 4)):
            _monitoring(sub, f"app{m}", ns)
        if sub.rng.random() < 0.5:
            _backup(sub, f"nightly-{r}", ns)
        if sub.rng.random() < 0.6:
            _crds(sub, r)
        corpus.files += sub.files
        corpus.objects += sub.objects
        corpus.kinds.update(sub.kinds)
        corpus.sizes.extend(sub.sizes)
    return corpus


# --- peers --------------------------------------------------------------------------------------


def kube_score_binary() -> str:
    """kube-score from $KUBE_SCORE, PATH or the cache, else ``go install`` into the cache."""
    return go_peer("kube-score", "KUBE_SCORE", KUBE_SCORE_PKG)


def describe(corpus: Corpus) -> None:
    sizes = sorted(corpus.sizes)
    quart = statistics.quantiles(sizes, n=100)
    print(
        f"corpus: {corpus.objects} objects of {len(corpus.kinds)} kinds in {corpus.files} files "
        f"({sum(sizes) / 2**20:.1f} MiB); file size median {statistics.median(sizes):.0f} B, "
        f"p90 {quart[89]:.0f} B, p99 {quart[98]:.0f} B, max {sizes[-1] / 1024:.0f} KiB"
    )
    print("kinds: " + ", ".join(f"{k} {n}" for k, n in corpus.kinds.most_common()))


def profile(root: Path, jobs: int) -> None:
    """Where berth's CPU time goes: start-up, pool spin-up, schema compiles, CEL, per-file work.

    CPU seconds (``time.process_time`` in this process, user + system of children otherwise),
    which a loaded machine inflates far less than wall time.
    """
    import cProfile
    import gc
    import pstats

    empty = Path(tempfile.mkdtemp(prefix="berth-lint-empty-"))
    cmd = [sys.executable, "-m", "berth", "lint", "-f", "json"]
    _, startup, _ = timed_cpu([*cmd, str(empty)])
    empty.rmdir()
    _, one, _ = timed_cpu([*cmd, "-j", "1", str(root)])
    _, pooled, _ = timed_cpu([*cmd, "-j", str(jobs), str(root)])
    print(
        f"CPU s: start-up (lint of an empty directory) {startup:.2f}; "
        f"whole corpus -j 1 {one:.2f}, -j {jobs} {pooled:.2f}"
    )

    from berth.lint.engine import LintOptions, _Linter, lint_paths
    from berth.lint.loader import expand_paths, load_file

    gc.disable()  # as lint_paths runs
    files = list(expand_paths([str(root)]))
    linter = _Linter(LintOptions(jobs=1))
    t_load = t_lint = 0.0
    for path in files:
        a = time.process_time()
        loaded = load_file(path)
        b = time.process_time()
        linter.lint_loaded(loaded)
        t_lint += time.process_time() - b
        t_load += b - a
    compiled = [key for key, v in linter.schemas._validators.items() if v is not None]
    again = _Linter(LintOptions(jobs=1))
    a = time.process_time()
    for api_version, kind in compiled:
        again.schemas.validator(api_version, kind)
    t_compile = time.process_time() - a
    _, bare, _ = timed_cpu([sys.executable, "-c", "import berth.lint.engine"])
    first_rule = "from berth.lint.cel import CelChecker; CelChecker()._program('self.a == 1')"
    _, warm, _ = timed_cpu([sys.executable, "-c", f"import berth.lint.engine; {first_rule}"])
    t_cel = warm - bare  # what each process that meets a CEL rule pays once (parser from its cache)
    print(f"one process, {len(files)} files: read+parse {t_load:.2f}, validate+rules {t_lint:.2f} (of which:)")
    print(
        f"  schema compiles: {len(compiled)} kinds, {t_compile:.2f} "
        f"({t_compile / max(1, len(compiled)) * 1e3:.0f} ms each)"
    )
    print(
        f"  CEL: cel-python import, cached parser, first rule {t_cel:.2f}; "
        f"rules skipped: {dict(linter.schemas.cel.skipped)}"
    )
    gc.enable()
    prof = cProfile.Profile()
    prof.enable()
    lint_paths([str(root)], LintOptions(jobs=1))
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="write the corpus here and keep it")
    parser.add_argument("--profile", action="store_true", help="print where berth's time goes instead")
    args = parser.parse_args()

    version = resolve_version(None)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="berth-lint-corpus-"))
    try:
        if work.exists() and any(work.iterdir()):
            shutil.rmtree(work)
        corpus = generate(work, args.repos)
        describe(corpus)
        if args.profile:
            profile(work, args.jobs)
            return 0
        files = sorted(str(p) for p in work.rglob("*.yaml"))
        berth = [sys.executable, "-m", "berth", "lint", "-j", str(args.jobs), "-f", "json", str(work)]
        runs = {
            "berth lint --schema-only": [*berth, "--schema-only"],
            "kubeconform -strict": kubeconform_command(version, args.jobs, work),
            "berth lint": berth,
            "kube-score score": [kube_score_binary(), "score", "--output-format", "ci", *files],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        outputs: dict[str, subprocess.CompletedProcess[str]] = {}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                seconds, cpu_seconds, proc = timed_cpu(cmd)
                if proc.returncode not in (0, 1):
                    print(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr)
                    return 2
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
                outputs[name] = proc
            loads.append(os.getloadavg()[0])
        summary, seen = kubeconform_summary(outputs["kubeconform -strict"])
        if seen != corpus.objects:
            print(f"kubeconform saw {seen} objects, expected {corpus.objects}", file=sys.stderr)
            return 2
        findings = json.loads(outputs["berth lint"].stdout)
        schema_files = {
            f["file"] for f in json.loads(outputs["berth lint --schema-only"].stdout) if f["rule"] == "schema-invalid"
        }
        scored = sum(1 for line in outputs["kube-score score"].stdout.splitlines() if line.startswith("["))
        print(
            f"kubeconform: {summary['invalid']} invalid, {summary['errors']} errors, {summary['skipped']} skipped; "
            f"berth --schema-only: {len(schema_files)} files with schema errors; "
            f"berth lint: {len(findings)} findings; kube-score: {scored} check results"
        )
        median = {name: statistics.median(samples) for name, samples in times.items()}
        print(f"\n{'tool':26} {'median s':>9} {'objects/s':>10} {'CPU s':>6}  wall per round")
        for name, samples in times.items():
            print(
                f"{name:26} {median[name]:9.2f} {corpus.objects / median[name]:10.0f} "
                f"{statistics.median(cpu[name]):6.2f}  " + " ".join(f"{s:.2f}" for s in samples)
            )
        # ratios of throughput, paired per round, then the median of the rounds; CPU in brackets
        pairs = (("berth lint --schema-only", "kubeconform -strict", 1.5), ("berth lint", "kube-score score", 1.0))
        print()
        for mine, peer, goal in pairs:
            ratios = [p / m for m, p in zip(times[mine], times[peer], strict=True)]
            cpu_ratio = statistics.median(p / m for m, p in zip(cpu[mine], cpu[peer], strict=True))
            # each tool's fastest round: the one a load spike on the shared cores disturbed least
            best = min(times[peer]) / min(times[mine])
            print(
                f"{mine} vs {peer}: {statistics.median(ratios):.2f}x throughput ({cpu_ratio:.2f}x per CPU second; "
                f"rounds {' '.join(f'{r:.2f}' for r in ratios)}; fastest rounds {best:.2f}x; goal >= {goal}x)"
            )
        print(
            f"\njobs={args.jobs} repeat={args.repeat} kubernetes={version} cpus={os.cpu_count()} "
            f"load {' '.join(f'{x:.1f}' for x in loads)} date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
