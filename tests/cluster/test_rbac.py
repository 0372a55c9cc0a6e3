"""docs/rbac.md is the truth: every command runs as a ServiceAccount bound to exactly its Role and ClusterRole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from .cluster_helpers import admin, berth, claim_names, expected_claims, seed_like, write_spec

pytestmark = pytest.mark.cluster

RBAC_DOC = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"


def _documented(namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", RBAC_DOC.read_text(), re.S)]
    role = next(b for b in blocks if b["kind"] == "Role")
    cluster_role = next(b for b in blocks if b["kind"] == "ClusterRole")
    role["metadata"]["namespace"] = namespace
    cluster_role["metadata"]["name"] = f"berth-cluster-{namespace}"  # cluster-scoped: one per test namespace
    return role, cluster_role


def _token_kubeconfig(kube_client: Any, admin_config: Path, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount, its token from the TokenRequest API."""
    from lightkube.models.authentication_v1 import TokenRequestSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ServiceAccount

    kube_client.create(ServiceAccount(metadata=ObjectMeta(name=account, namespace=namespace)))
    request = ServiceAccount.Token(
        metadata=ObjectMeta(name=account, namespace=namespace),
        spec=TokenRequestSpec(audiences=[], expirationSeconds=3600),
    )
    token = kube_client.create(request, name=account, namespace=namespace).status.token
    config = yaml.safe_load(admin_config.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"] = [
        {
            "name": account,
            "context": {"cluster": config["clusters"][0]["name"], "user": account, "namespace": namespace},
        }
    ]
    config["current-context"] = account
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def documented_deployer(kube_client: Any, kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig of ServiceAccount ``deployer`` bound to exactly docs/rbac.md's Role and ClusterRole."""
    from lightkube.codecs import from_dict
    from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

    role, cluster_role = _documented(namespace)
    subject = [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}]
    group = {"apiGroup": "rbac.authorization.k8s.io"}
    cluster_name = cluster_role["metadata"]["name"]
    bindings = [
        ("RoleBinding", {"name": "berth", "namespace": namespace}, {**group, "kind": "Role", "name": "berth"}),
        ("ClusterRoleBinding", {"name": cluster_name}, {**group, "kind": "ClusterRole", "name": cluster_name}),
    ]
    objects = [role, cluster_role] + [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": meta,
            "subjects": subject,
            "roleRef": ref,
        }
        for kind, meta, ref in bindings
    ]
    for obj in objects:
        kube_client.create(from_dict(obj))
    try:
        yield _token_kubeconfig(kube_client, kubeconfig, namespace, "deployer", tmp_path / "deployer")
    finally:  # the namespace's own objects go with the namespace; the cluster-scoped ones do not
        kube_client.delete(ClusterRoleBinding, cluster_name)
        kube_client.delete(ClusterRole, cluster_name)


def test_every_command_works_with_exactly_the_documented_permissions(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    with documented_deployer(kube_client, kubeconfig, namespace, tmp_path) as deployer:
        spec = write_spec(tmp_path, seed_like(namespace, replicas=3))
        steps = [
            ("plan", str(spec)),
            ("up", str(spec), "--timeout", "120"),
            ("up", str(spec), "--no-wait"),
            ("status", "ml-training"),
            ("doctor", "ml-training"),
            ("scale", "ml-training", "2", "--wait", "--timeout", "120"),
            ("gc", "ml-training"),
            ("gc", "ml-training", "--yes"),
            ("down", "ml-training", "--delete-volumes", "--yes"),
        ]
        for step in steps:
            result = berth(*step, kubeconfig=deployer)
            assert result.returncode == 0, f"berth {' '.join(step)}: {result.stderr}"
            assert "forbidden" not in result.stdout + result.stderr
        assert claim_names(admin(kubeconfig, namespace), namespace) == set()


def test_missing_permissions_are_one_clear_forbidden_line(
    kubeconfig: Path, namespace: str, tmp_path: Path, kube_client: Any
) -> None:
    nobody = _token_kubeconfig(kube_client, kubeconfig, namespace, "nobody", tmp_path / "nobody")
    spec = write_spec(tmp_path, seed_like(namespace, replicas=1))
    for args in (("status", "ml-training"), ("up", str(spec), "--no-wait")):
        result = berth(*args, kubeconfig=nobody)
        assert result.returncode == 1
        first = result.stderr.splitlines()[0]
        assert first.startswith("error: ") and "forbidden: " in first
        assert f"system:serviceaccount:{namespace}:nobody" in first
        assert "docs/rbac.md" in result.stderr and "Traceback" not in result.stderr
    assert expected_claims("ml-training", range(0)) == claim_names(admin(kubeconfig, namespace), namespace)
