"""Generate docs/lint.md from the rules themselves, so the rule table cannot drift from the code.

python tools/gen_lint_docs.py          # rewrite docs/lint.md
python tools/gen_lint_docs.py --check  # exit 1 when docs/lint.md is stale (used by the tests)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from berth.lint.rules import Rule, all_rules
from berth.lint.schema import available_versions, bundled_schemas

OUT = Path(__file__).resolve().parent.parent / "docs" / "lint.md"
TOOLS = ("kube-linter", "kube-score", "polaris")

HEADER = """# `berth lint` — offline schema validation and storage-aware rules

Generated from `src/berth/lint/rules/` by `tools/gen_lint_docs.py`; do not edit by hand.

`berth lint PATH…` checks any Kubernetes manifests — not only berth's — before `kubectl apply`:
files, directories (recursive; `.yaml`, `.yml`, `.json`; hidden files skipped), `-` for stdin,
multi-document files, `List` kinds, and berth specs (`apiVersion: berth.dev/v1alpha1`,
`kind: TrainingCluster`), which are validated, rendered and then linted as `<spec> (rendered)`
(the same stream `berth render` prints, so line numbers match it).

Files are read as kubectl reads them: UTF-8, with or without a byte-order mark, or UTF-16
(little- or big-endian) with one; a `.json` (or any file starting with `{{`/`[`) is a JSON
stream, one object per value (several objects one after another, as kubectl prints them, or a
`kubectl get -o json` `List`), every finding at its `file:line:col` as in YAML, numbers typed
as JSON types them. Text in Latin-1 or another 8-bit encoding is linted as kubectl would apply
it (each byte that is not UTF-8 becomes U+FFFD) and reported once, at its first such byte, as
`unreadable-file` (exit 2); text with NUL bytes and no byte-order mark (UTF-16 without a BOM)
is not read, as kubectl cannot read it either.

```
berth lint manifests/                       # text report, exit 1 on warnings or errors
berth lint -f sarif k8s/ > lint.sarif          # GitHub code scanning
berth lint --schema-only --kubernetes-version 1.30 chart-output.yaml
berth lint --list-rules ; berth lint --explain rwo-claim-multi-attach
berth lint --group-by kustomization repos/      # cross-object rules per kustomization
```

## Exit codes

| code | meaning |
| --- | --- |
| 0 | nothing at or above `--fail-on` (default `warning`; `error`, `warning` or `info`) |
| 1 | at least one finding at or above `--fail-on` |
| 2 | usage error, or input that could not be read or parsed (YAML or JSON syntax, not UTF-8 or UTF-16 \
with a BOM, a berth spec that does not validate); everything that could be read is still reported |

## Schema validation

Every object is validated strictly against the official Kubernetes OpenAPI schemas shipped by
the installed `kubernetes-validate` package (Kubernetes {versions}; the newest is the default,
`--kubernetes-version X.Y` picks the newest installed version not after X.Y). Unknown fields,
wrong types and missing required fields are rejected, duplicate keys are reported, and **all**
errors of an object are listed, each at `file:line:col` of the offending field. Each schema is
compiled once per (version, kind) with jsonschema-rs and files are spread over worker processes.

Bundled CRDs (compact, faithful subsets of the upstream CRDs: every field at the levels modelled,
deeper structures left open): {crds}. `--schema-dir DIR` adds more: CRD manifests, or JSON
schemas whose `kind` and `apiVersion` properties carry a one-value `enum` (the
kubernetes-json-schema format). An object whose type no schema knows is reported as
`schema-unknown-kind` (info) and counted as skipped: skipped is not valid.

## Training custom resources

The pod templates inside training resources are linted with every pod rule (GPU, security,
env, rendezvous, checkpoint), each finding placed on the resource's own line and naming the
resource and the full path: JobSet (`spec.replicatedJobs[].template.spec.template`),
LeaderWorkerSet (`spec.leaderWorkerTemplate.{{leaderTemplate,workerTemplate}}`), RayCluster,
RayJob and RayService (`headGroupSpec.template`, `workerGroupSpecs[].template`), Kubeflow
PyTorchJob, TFJob, XGBoostJob, PaddleJob, MXJob, JAXJob (`spec.<framework>ReplicaSpecs.<role>.template`)
and MPIJob (`spec.mpiReplicaSpecs`), (Cluster)TrainingRuntime (`spec.template.spec.replicatedJobs[]`)
and TrainJob, whose `spec.trainer` (image, command, args, env, `resourcesPerNode`) is linted as
the trainer container; the rest of a TrainJob's pod comes from its runtime and is linted there.
Each template counts as a Job running as many pods as its replicas say (`constant-rank-env`
fires on a RANK constant across a role's replicas). An ignore annotation on the resource covers
its templates. Their CRDs are bundled (`src/berth/lint/schemas/training.yaml`), so the rest of each
resource is validated offline too: every spec field of Kubeflow training-operator v1 (`kubeflow.org/v1`),
mpi-operator (`kubeflow.org/v2beta1` MPIJob), Kubeflow Trainer v2.0-v2.3
(`trainer.kubeflow.org/v1alpha1`), JobSet (`jobset.x-k8s.io/v1alpha2`), LeaderWorkerSet
(`leaderworkerset.x-k8s.io/v1`) and KubeRay (`ray.io/v1`, `v1alpha1`), with the pod and job
templates, claims, env and resources inside them checked against the official Kubernetes schemas
of the selected version. They were checked field by field against the upstream CRDs (trainer
v2.0.0-v2.3.0 and 8c0f505, training-operator before its v1 API was removed, mpi-operator caa3c47,
jobset 08dfbdf, lws 060ab4d, kuberay feeaf72): no upstream field is missing, types agree; fields
one release removed within an API version are still accepted, fields that a CRD default or the
project's webhook fills in are not required, null fields are accepted (the API server prunes
them), and structures that change every release (Ray's autoscaler, TLS and auth options) are left
open; `ray.io/v1alpha1` takes v1's fields and MXJob the newer `runPolicy` (supersets).
`tools/check_bundled_crds.py UPSTREAM_CRD...` repeats the check against newer releases. Schema-only
lint of the 101 training resources in those repositories' examples: one error,
genuine (an old XGBoost test's template carries `apiVersion`/`kind`).

## CRD validation rules (CEL)

A CRD's `x-kubernetes-validations` rules are evaluated offline with cel-python, as the API server
evaluates them on create: `self` is the node the rule sits on (each item of an array, each value
of a map), and a rule that comes out false is a `schema-invalid` error at that node (or at the
rule's `fieldPath`) with the rule's message (its `messageExpression` when that evaluates). This
holds for the bundled CRDs and for every CRD given with `--schema-dir`, so linting against an
upstream CRD enforces all of its rules. The bundled rules are upstream's, word for word, kept only
where every checked release carries them (`tools/check_bundled_crds.py` fails on a bundled rule
upstream lacks): JobSet's "StartupPolicy and DependsOn APIs are mutually exclusive" (also in
Trainer runtimes' JobSet template) and "namespace cannot be set for VolumeClaimPolicies
templates", Trainer's `spec.managedBy` values and flux `numProcPerNode >= 1`. Left out: Trainer
v2.1+'s TrainJob name rules, v2.3's `storageUri` and `envInjection` rules, and the `mlPolicy`
one-of whose wording changed between releases (an object an older release accepts is no error).

Not evaluated, and counted (the text summary ends with "N CRD CEL rule checks not evaluated"
when there are any): transition rules (`oldSelf`: they
compare an update with the stored object), rules calling a Kubernetes CEL library function
cel-python 0.5 lacks (the list and string extensions such as `isSorted`, `indexOf`, `lowerAscii`,
`split`, `join`; `quantity`, `url`, `ip`, `cidr`, `format.*`, `semver`, `authorizer`), and rules
whose evaluation fails offline (a field the API server would default first): these give no
finding, as their real outcome is unknown. cel-python is imported only when an object whose CRD
has rules is linted (about 0.1 s of CPU per process then; CLI start-up is unchanged); its Lark
parser is built once and kept in `$XDG_CACHE_HOME/berth/cel/` (`~/.cache/berth/cel/`), which
Lark checks against the grammar and rebuilds when stale or damaged (building it costs 0.15 s).

## Cross-object rules and `--group-by`

Rules that look across objects (a PDB and the workloads it selects, a claim and its
StorageClass, a StatefulSet and its headless Service) join only the objects of one
application, never everything on the command line: linting twenty unrelated repositories at
once must not match one repository's `redis-pdb` against another's `redis` workloads.
`--group-by dir` (default) joins the objects of one directory; `file` those of one file;
`kustomization` those under the nearest directory holding a `kustomization.yaml` (else the
file's directory); `none` everything given together. A berth spec's rendered stream belongs
with its spec file; stdin is one group. Within a group, a rule never matches across
namespaces (objects without a namespace match any, as `kubectl apply -n` would place them).

## Hostile input

Input is bounded like go-yaml bounds it: alias expansion (a 413-byte "billion laughs" file is
one `yaml-syntax` finding in well under a second), nesting deeper than 100 levels (one finding,
no traceback), and files over 16 MiB (one `unreadable-file` finding, not read). Each breach
exits 2 and the other files are still linted; `tests/lint/test_hostile.py` checks wall time and
peak memory in a subprocess. `--schema-dir` reads CRDs with the same YAML layer (upstream CRDs
such as kube-prometheus' AlertmanagerConfig, whose enums hold a bare `=`, load), and a CRD
schema jsonschema-rs cannot compile leaves its kind unvalidated (`schema-unknown-kind`) instead
of aborting the run.

## Large files

Lint time is linear in the input: one multi-document file of 2, 4, 8 and 15.5 MiB (7,300 to
56,500 generated resources) takes 0.8-0.95 s of CPU per MiB for the full lint and 0.5-0.8 s for
`--schema-only` at every size (`python benchmarks/lint_throughput.py --large 2,4,8,15.5`;
docs/benchmarks.md has the run, with kubeconform and PyYAML's C loader on the same files). It
was not: every document's node tree stays alive until its findings are placed, and each full
pass of Python's cyclic garbage collector walked all of them again (1, 2, 4 MiB took 1.4, 3.5,
8.6 s of CPU; 4 MiB 61 s of wall time on this loaded machine), so the collector is paused while
linting (nothing lint builds is cyclic; reference counting frees it).

Memory: each document is validated and its rules run as soon as libyaml has composed it, its
findings placed, and its node tree (about 100x its text) dropped. Trees that cross-object findings
may point into are dropped too in files over 1 MiB and composed again from the document's own
lines if a finding lands there (smaller files keep them: no CPU spent where memory does not
matter). Peak RSS at 15.5 MiB: 425 MiB for the full lint and 357 MiB for `--schema-only` (27x and
23x the file; 1.1 and 1.0 GiB before), at 8 MiB 259 and 215 MiB (611 and 552 MiB before), with
the same findings and positions. What stays is the text, the objects and the findings. The price
is CPU in the full lint of large files where most documents get a cross-object finding (12.6
instead of 10.7 s at 15.5 MiB, one run each at load ~10); `--schema-only` got cheaper (5.5
instead of 6.8 s).

## Speed on repository-shaped files

`python benchmarks/lint_corpus.py` generates 40 repositories laid out like real ones (an
application per directory with a kustomization, Helm-rendered streams, CRDs up to upstream size,
training and monitoring CRs: 4,058 objects of 22 kinds in 3,008 files, median 259 bytes) and times
berth against kubeconform (same schemas) and kube-score in interleaved rounds; `--profile` shows
where the CPU goes. kube-linter, the linter the issue compares with, could not be obtained here,
so kube-score stands in for the full lint. On 2026-12-01 (docs/benchmarks.md has the runs):
`--schema-only` 2.25-3.48x kubeconform's throughput (2.28-2.36x per CPU second), the full lint
0.68x kube-score's (0.57x per CPU second; 0.65x before cel-python's parser was cached and the
parent process linted alongside the pool): berth spends about 0.55 s of CPU starting, about
half of the rest composing YAML and building objects, and 0.11 s per process importing
cel-python when CRs with CEL rules are present.

## Measured on real repositories

2026-11-30, berth at this commit against the commit before issue #12's work (1f7d825), `berth lint
-j 2` on one tree of five public repositories fetched at their newest stored snapshot
(kubernetes/examples 279e8e4, kubernetes-sigs/jobset 08dfbdf, kubernetes-sigs/lws 060ab4d,
kubeflow/trainer 8c0f505, ray-project/kuberay feeaf72 `ray-operator/config/samples`; Helm
`templates/` and `charts/` removed): 638 files, 2 shared cores. Their files are not committed;
the false positives found became the small trees of `tests/lint/test_real_repos.py`.

| | before | after |
| --- | --- | --- |
| wall time, peak RSS | 3.3 s, 74 MiB | 3.9 s, 75 MiB |
| resources linted | 790 (incl. 69 non-manifest documents) | 721 |
| training CRs whose pod templates reach the pod rules | 0 | 155 (268 templates, 20 with GPUs) |
| errors | 146 | 67 |
| `invalid-document` (kustomization.yaml, KEP metadata, package.json) | 78 | 0 |
| `schema-invalid` (24 of them kustomize patches) | 37 | 13 (placeholders `{{{{cell}}}}`, typos) |
| `mount-without-volume` on CR templates (JobSet/LWS claims) | 14 once templates were linted | 0 |
| new: `removed-api-version`, `removed-volume-plugin`, `invalid-name`, `gpu-without-limits` | 0 | 11, 5, 6, 12 |

`unknown-storage-class` went from 1 to 3: two claims in `volumes/storageos/` use a class
`fast` that only `volumes/vsphere/` defines — found before only because everything joined one
world. A dense synthetic file (27,000 Deployments, 30 MB) takes ~2 min and 2.3 GB, hence the
16 MiB file limit; kube-prometheus' 85 manifests (5.7 MB, CRD-heavy) lint in 2.0 s, 112 MiB.

## Not yet

- UTF-32, and UTF-16 without a byte-order mark (kubectl reads neither): one `unreadable-file`.
- In JSON, a character written as a surrogate-pair escape (`\\ud83d\\ude80`) moves the columns of
  later findings on the same line two to the left.
- `duplicate-key` and `ambiguous-octal` come from the YAML reader, before objects exist: the
  `berth.dev/ignore` annotation does not cover them (`disable` and `per-file-ignores` do).
- Bundled training CRDs: `ray.io/v1alpha1` is checked with v1's fields; upstream CEL rules that
  only some releases carry, transition rules and Kubernetes CEL library calls are not evaluated.
- Full lint of many small files is slower than kube-score (0.68x, goal 1.0x): CLI start-up
  (0.55 s of CPU, about half of it imports lint does not use: `kubernetes_validate` run only to
  find its schema folder, the pydantic spec models) and per-file YAML
  composition in Python are the costs; on a busy 2-core machine `-j 1` is as fast as `-j 2`.
- Memory is about 25x a large file, not constant: the text, every object and the findings
  stay until the run ends (cross-object rules need the objects), bounded by the 16 MiB limit.

## Suppressing findings

- On an object: annotation `berth.dev/ignore: "<rule-id>: <reason>; <rule-id>: <reason>"`.
  A reason is required: an entry without one suppresses nothing and is itself reported
  (`ignore-without-reason`), as is an unknown rule id.
- In `.berth-lint.yaml`, found like ruff finds its configuration: `--config FILE`, else the
  nearest `.berth-lint.yaml` in the inputs' directory or any parent:

```yaml
disable: [pdb-unhealthy-eviction-policy]   # rules not to run ("all" to start from nothing)
enable: [run-as-root]                      # re-enable after "disable: [all]"
severity: {{image-latest-tag: error}}        # per-rule severity overrides
fail-on: warning
kubernetes-version: "1.31"
ignore-paths: [vendor/, "charts/*/tests/*"] # globs relative to the config file
known-storage-classes: [nfs-client]        # classes that exist in the cluster, not in the input
per-file-ignores:                          # like ruff; a reason is required
  "legacy/*.yaml": {{run-as-root: "vendor image, tracked in OPS-123"}}
```

## Output formats

`--format` (`-f`, `-o`): `text` (grouped by file, the source line with a caret, colour on a TTY
unless `NO_COLOR` is set), `json` (one object per finding: rule, severity, file, line, column, path,
apiVersion, kind, namespace, name, message, fix), `sarif` (SARIF 2.1.0, validated against the
official schema in the tests; upload it to GitHub code scanning), `junit` (one test case per file).

## Annotations the rules read

| annotation | on | meaning |
| --- | --- | --- |
| `berth.dev/tier: hot\\|warm\\|cold` | StorageClass | storage tier (else guessed from the media: \
HDD is cold, io1/io2/pd-ssd hot) |
| `berth.dev/checkpoint-volume: "true"` | volumeClaimTemplate | this claim holds checkpoints |
| `berth.dev/checkpoint-size: 40Gi` | claim, claim template or StatefulSet | size of one checkpoint |
| `berth.dev/checkpoint-keep: "3"` | claim, claim template or StatefulSet | checkpoints retained on the volume |
| `berth.dev/ignore: "<rule>: <reason>"` | any object | suppression |

Provider limits (EBS gp3/gp2/io1/io2/st1/sc1 sizes, IOPS, throughput and ratios; zonal and HDD
media for EBS, GCE PD and Azure Disk) live in `berth.providers`, shared with the spec validator,
each number citing the AWS documentation.

## Rules

{count} rules. Equivalent checks of other linters are listed where one exists.

| rule | severity | what it flags | kube-linter | kube-score | Polaris |
| --- | --- | --- | --- | --- | --- |
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "—"


def _row(rule: Rule) -> str:
    cells = [f"[`{rule.id}`](#{rule.id})", str(rule.severity), _cell(rule.summary)]
    cells += [_cell(rule.equivalents.get(tool, "")) for tool in TOOLS]
    return "| " + " | ".join(cells) + " |"


def _section(rule: Rule) -> str:
    body = rule.doc.strip().split("\n", 1)[1].strip() if "\n" in rule.doc.strip() else ""
    body = re.sub(r"^## ", "#### ", body, flags=re.MULTILINE)
    same = ", ".join(f"{tool}: `{ids}`" for tool, ids in rule.equivalents.items())
    scope = "looks across objects of the input" if rule.cross else "looks at one object"
    lines = [f"### {rule.id}", "", f"**{rule.severity}** · {scope}" + (f" · same as {same}" if same else "")]
    return "\n".join([*lines, "", rule.summary + ".", "", body, ""])


def generate() -> str:
    rules = all_rules()
    crds = ", ".join(f"{kind} ({api})" for api, kind in sorted(bundled_schemas()))
    versions = available_versions()
    header = HEADER.format(versions=", ".join(versions), crds=crds, count=len(rules))
    table = "\n".join(_row(r) for r in rules.values())
    sections = "\n".join(_section(r) for r in rules.values())
    return f"{header}{table}\n\n{sections}".rstrip() + "\n"


def main() -> int:
    text = generate()
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python tools/gen_lint_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
