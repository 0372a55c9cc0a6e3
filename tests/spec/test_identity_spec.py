"""spec.identity through the real CLI: bad values are one located line and exit 2; good ones render right.

Same shape as test_pod_features_bad.py: the token each error must point at is found by text search,
so the expected line:col does not come from the loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import RunBerth
from .spec_helpers import HEADER
from .test_pod_features_bad import BASE, Bad

ARN = "arn:aws:iam::111122223333:role/training-data"
ARCHIVE = "  archive: {url: s3://ckpts/run1}\n"
S3_DATASET = (
    "  sharedVolumes: {data: {claimName: corpus, mountPath: /data, size: 10Gi, accessMode: ReadWriteMany}}\n"
    "  datasets: {corpus: {source: s3://corpus-bucket/v1, into: data}}\n"
)


CASES = [
    Bad(
        "user-arn",
        "  identity: {provider: aws, roleArn: 'arn:aws:iam::111122223333:user/alice'}\n",
        "spec.identity.roleArn",
        "is an IAM user ARN; IRSA assumes a role",
        "'arn:aws",
        None,
    ),
    Bad(
        "not-an-arn",
        "  identity: {provider: aws, roleArn: training-data}\n",
        "spec.identity.roleArn",
        "is not an IAM role ARN",
        "training-data",
        None,
    ),
    Bad(
        "short-account",
        "  identity: {provider: aws, roleArn: 'arn:aws:iam::1234:role/x'}\n",
        "spec.identity.roleArn",
        "is not an IAM role ARN",
        "'arn:aws",
        None,
    ),
    Bad(
        "gcp-email",
        "  identity: {provider: gcp, serviceAccount: trainer@gmail.com}\n",
        "spec.identity.serviceAccount",
        "is not a Google service account email",
        "trainer@gmail.com",
        None,
    ),
    Bad(
        "azure-client-id",
        "  identity: {provider: azure, clientId: my-app}\n",
        "spec.identity.clientId",
        "is not a UUID",
        "my-app",
        None,
    ),
    Bad(
        "unknown-provider",
        "  identity: {provider: alibaba}\n",
        "spec.identity.provider",
        "",
        "alibaba",
        None,
    ),
    Bad(
        "aws-needs-role",
        "  identity: {provider: aws}\n",
        "spec.identity.provider",
        "provider aws needs identity.roleArn",
        "aws",
        None,
    ),
    Bad(
        "field-of-another-provider",
        f"  identity: {{provider: gcp, serviceAccount: trainer@proj-123.iam.gserviceaccount.com, roleArn: '{ARN}'}}\n",
        "spec.identity.roleArn",
        "roleArn is for provider aws, not gcp",
        "'arn:aws",
        None,
    ),
    Bad(
        "own-service-account",
        f"  serviceAccountName: mine\n  identity: {{provider: aws, roleArn: '{ARN}'}}\n",
        "spec.identity",
        "berth annotates only the ServiceAccount it renders",
        "{provider",
        None,
    ),
    Bad(
        "archive-without-credentials",
        ARCHIVE,
        "spec.archive",
        "the archive has no credentials: neither secretName nor spec.identity",
        "{url",
        None,
    ),
    Bad(
        "gcp-cannot-sign-s3",
        S3_DATASET + "  identity: {provider: gcp, serviceAccount: trainer@proj-123.iam.gserviceaccount.com}\n",
        "spec.datasets.corpus",
        "the pods' gcp identity cannot sign S3 requests",
        "{source",
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_identity_is_one_located_line(case: Bad, berth: RunBerth, write_spec: Callable[[str], Path]) -> None:
    path = write_spec(case.text())
    result = berth("render", str(path))
    assert result.code == 2, result.stdout + result.stderr
    located = [ln for ln in result.stderr.splitlines() if ln.startswith(f"{path}:")]
    assert len(located) == 1, result.stderr
    line, col = case.position()
    assert located[0].startswith(f"{path}:{line}:{col}: {case.path}: "), located[0]
    assert case.message in located[0], located[0]
    assert "Traceback" not in result.stderr


def _render(berth: RunBerth, write_spec: Callable[[str], Path], body: str) -> list[dict[str, Any]]:
    result = berth("render", str(write_spec(HEADER + BASE + body)))
    assert result.code == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize(
    ("identity", "annotations", "pod_labels"),
    [
        (f"{{provider: aws, roleArn: '{ARN}'}}", {"eks.amazonaws.com/role-arn": ARN}, {}),
        (
            "{provider: gcp, serviceAccount: trainer@proj-123.iam.gserviceaccount.com}",
            {"iam.gke.io/gcp-service-account": "trainer@proj-123.iam.gserviceaccount.com"},
            {},
        ),
        (
            "{provider: azure, clientId: 6f1c3f5e-3b1d-4c8e-9d2a-1b2c3d4e5f60}",
            {"azure.workload.identity/client-id": "6f1c3f5e-3b1d-4c8e-9d2a-1b2c3d4e5f60"},
            {"azure.workload.identity/use": "true"},
        ),
        ("{provider: eks-pod-identity}", {}, {}),
    ],
    ids=["aws", "gcp", "azure", "eks-pod-identity"],
)
def test_identity_renders_the_annotations_the_webhooks_read(
    identity: str,
    annotations: dict[str, str],
    pod_labels: dict[str, str],
    berth: RunBerth,
    write_spec: Callable[[str], Path],
) -> None:
    body = f"  identity: {identity}\n"
    if "aws" in identity or "eks" in identity:  # AWS identities sign S3: the archive and dataset use them
        body += ARCHIVE + S3_DATASET
    objects = _render(berth, write_spec, body)
    sa = _one(objects, "ServiceAccount")
    assert {k: v for k, v in (sa["metadata"].get("annotations") or {}).items() if "." in k.split("/")[0]} == (
        annotations
    )
    assert sa["automountServiceAccountToken"] is False  # the webhooks project their own token
    pods = [_one(objects, "StatefulSet")["spec"]["template"]]
    pods += [o["spec"]["template"] for o in objects if o["kind"] == "Job"]
    for template in pods:
        labels = template["metadata"]["labels"]
        assert {k: labels[k] for k in labels if k.startswith("azure.")} == pod_labels
        assert template["spec"]["serviceAccountName"] == "t"
        for c in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
            names = {e["name"] for e in c.get("env", [])}
            assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, c["name"]
    text = yaml.safe_dump_all(objects)
    assert "AWS_SECRET_ACCESS_KEY" not in text


def test_a_stores_secret_wins_over_the_identity(berth: RunBerth, write_spec: Callable[[str], Path]) -> None:
    """Documented precedence: the archive with a Secret keeps its keys; the dataset without one uses the role."""
    body = (
        f"  identity: {{provider: aws, roleArn: '{ARN}'}}\n"
        "  archive: {url: s3://ckpts/run1, secretName: archive-keys}\n" + S3_DATASET
    )
    objects = _render(berth, write_spec, body)
    trainer = _one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in trainer["env"] if "secretKeyRef" in str(e)}
    assert refs.get("AWS_ACCESS_KEY_ID") == "archive-keys" and refs.get("AWS_SECRET_ACCESS_KEY") == "archive-keys"
    (job,) = [o for o in objects if o["kind"] == "Job"]
    stage = job["spec"]["template"]["spec"]["containers"][0]
    assert not {e["name"] for e in stage.get("env", [])} & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
