"""The operator under the ServiceAccount and ClusterRole `berth operator install` creates (docs/rbac.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from berth.operator.manifests import NAME, manifests

from .test_operator import eventually, get, start_operator, stop
from .test_operator_crd import kubectl_run

pytestmark = pytest.mark.cluster


def test_operator_runs_under_its_least_privilege_service_account(
    kubectl: Path, kubeconfig: Path, make_namespace: object, tmp_path: Path
) -> None:
    assert callable(make_namespace)
    system, work = make_namespace(), make_namespace()
    objects = [o for o in manifests(namespace=system) if o["kind"] not in ("Namespace", "Deployment")]
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    for batch in (crds, rest):  # as `berth operator install` does: the CRDs are served before their objects
        applied = kubectl_run(
            kubectl,
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(batch),
        )
        assert applied.returncode == 0, applied.stderr
        kubectl_run(
            kubectl, kubeconfig, "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=berth"
        )

    who = f"system:serviceaccount:{system}:{NAME}"
    for verb, resource, allowed in (
        ("patch", "statefulsets.apps", "yes"),
        ("patch", "trainingclusters.berth.dev/status", "yes"),
        ("get", "secrets", "no"),
        ("create", "pods", "no"),
        ("delete", "nodes", "no"),
        ("create", "clusterroles.rbac.authorization.k8s.io", "no"),
    ):
        sub = resource.split("/")
        extra = ["--subresource", sub[1]] if len(sub) > 1 else []
        done = kubectl_run(kubectl, kubeconfig, "auth", "can-i", verb, sub[0], *extra, "-n", work, "--as", who)
        assert done.stdout.strip() == allowed, f"{verb} {resource}: {done.stdout} {done.stderr}"
    # The leader-election Lease: only in the operator's own namespace.
    for ns, allowed in ((system, "yes"), (work, "no")):
        done = kubectl_run(
            kubectl, kubeconfig, "auth", "can-i", "update", "leases.coordination.k8s.io", "-n", ns, "--as", who
        )
        assert done.stdout.strip() == allowed, f"update leases in {ns}: {done.stdout} {done.stderr}"

    token = kubectl_run(kubectl, kubeconfig, "create", "token", NAME, "-n", system, "--duration", "1h")
    assert token.returncode == 0, token.stderr
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": NAME, "user": {"token": token.stdout.strip()}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = NAME
    as_sa = tmp_path / "operator.kubeconfig"
    as_sa.write_text(yaml.safe_dump(config))

    log = tmp_path / "operator.log"
    # With leader election, as the Deployment runs it: the Lease lives in the operator's namespace.
    proc = start_operator(
        as_sa,
        work,
        log,
        "--lease-namespace",
        system,
        "--lease-duration",
        "3s",
        "--renew-deadline",
        "2s",
        "--retry-period",
        "0.5s",
    )
    try:
        from .cluster_helpers import seed_like

        doc = seed_like(work, name="rbac", replicas=2)
        created = kubectl_run(kubectl, kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
        assert created.returncode == 0, created.stderr
        eventually(lambda: get(kubectl, kubeconfig, "statefulset", "rbac", "-n", work), "the StatefulSet", 90)
        status = eventually(
            lambda: ((get(kubectl, kubeconfig, "tc", "rbac", "-n", work) or {}).get("status") or {}).get(
                "observedGeneration"
            ),
            "status written by the ServiceAccount",
            60,
        )
        assert status == 1
        deleted = kubectl_run(kubectl, kubeconfig, "delete", "tc", "rbac", "-n", work, "--timeout=60s")
        assert deleted.returncode == 0, deleted.stderr
        lease = get(kubectl, kubeconfig, "lease", NAME, "-n", system) or {}
        assert (lease.get("spec") or {}).get("holderIdentity"), lease
        text = log.read_text()
        assert "Forbidden" not in text and " 403" not in text, text[-4000:]
    finally:
        stop(proc)
