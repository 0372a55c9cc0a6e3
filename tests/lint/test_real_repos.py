"""False positives found linting real repositories (kubernetes/examples, kubeflow/trainer, JobSet, LWS, KubeRay).

Small trees of our own laid out like those repositories: each failed before its fix.
"""

from __future__ import annotations

from pathlib import Path

from berth.lint.engine import LintOptions, lint_paths

OPTIONS = LintOptions(jobs=1)

DEPLOYMENT_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller-manager, namespace: system}
spec:
  template:
    spec:
      containers:
      - name: manager
        args: [--config=/controller_manager_config.yaml]
"""
DELETE_PATCH = """\
apiVersion: v1
kind: Namespace
metadata: {name: kubeflow-system}
$patch: delete
"""


def _rules(path: Path) -> list[str]:
    return sorted(f.rule for f in lint_paths([str(path)], OPTIONS).findings)


def test_files_without_any_apiversion_or_kind_are_not_manifests_in_a_walk(tmp_path: Path) -> None:
    (tmp_path / "kep.yaml").write_text("title: JobSet\nkep-number: 1234\nauthors: ['@someone']\n")
    (tmp_path / "package.json").write_text('{"name": "site", "version": "1.0.0"}\n')
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert _rules(tmp_path) == []
    # named on the command line, the file is still reported
    assert _rules(tmp_path / "kep.yaml") == ["invalid-document"]
    # one document with a kind makes it a manifest: the others are reported
    (tmp_path / "mixed.yaml").write_text("title: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert _rules(tmp_path) == ["invalid-document"]


def test_kustomize_patches_are_partial_objects(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [namespace.yaml]\npatches:\n- path: manager_config_patch.yaml\n- path: drop-ns.yaml\n"
    )
    (tmp_path / "manager_config_patch.yaml").write_text(DEPLOYMENT_PATCH)
    (tmp_path / "drop-ns.yaml").write_text(DELETE_PATCH)
    assert _rules(tmp_path) == []
    # a patch is still checked for unknown fields
    (tmp_path / "manager_config_patch.yaml").write_text(DEPLOYMENT_PATCH + "  replicaz: 2\n")
    assert _rules(tmp_path) == ["schema-invalid"]
    # without a kustomization the same object is a full (and invalid) Deployment
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "deploy.yaml").write_text(DEPLOYMENT_PATCH)
    assert "schema-invalid" in _rules(alone / "deploy.yaml")


def test_claims_from_jobset_and_lws_templates_are_volumes(tmp_path: Path) -> None:
    lws = """\
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: lws}
spec:
  replicas: 1
  leaderWorkerTemplate:
    size: 2
    volumeClaimTemplates:
    - metadata: {name: persistent-storage}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
    workerTemplate:
      spec:
        containers:
        - name: worker
          image: nginx:1.27
          volumeMounts: [{name: persistent-storage, mountPath: /data}]
---
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: js}
spec:
  volumeClaimPolicies:
  - templates:
    - metadata: {name: initializer}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 10Gi}}
  replicatedJobs:
  - name: node
    template:
      spec:
        template:
          spec:
            containers:
            - name: node
              image: pytorch/pytorch:2.4.0
              volumeMounts: [{name: initializer, mountPath: /workspace}]
"""
    (tmp_path / "x.yaml").write_text(lws)
    assert "mount-without-volume" not in _rules(tmp_path / "x.yaml")
    (tmp_path / "x.yaml").write_text(
        lws.replace("mountPath: /data", "mountPath: /data}, {name: scratch, mountPath: /s")
    )
    assert _rules(tmp_path / "x.yaml").count("mount-without-volume") == 1
