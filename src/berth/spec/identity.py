"""Cross-field checks of ``spec.identity``: each provider's one field, and stores that can use it.

Field values (an ARN that is not a role's, a malformed email or client ID) are checked in the model;
here: which field a provider needs, fields that belong to another provider, a user-named
ServiceAccount berth cannot annotate, and S3 stores (the archive, s3:// datasets) whose
credentials could come from nowhere or from an identity that cannot sign S3 requests.

Precedence, documented in docs/storage.md: a store's ``secretName`` wins for that store (its keys
are in the environment, which the AWS SDK's chain reads before web identity); ``spec.identity``
serves every store without one.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.spec.errors import SpecIssue
from berth.spec.model import TrainingCluster

# provider → the Identity field it needs (None: nothing in the cluster; EKS Pod Identity's
# association is made with the EKS API).
NEEDS = {"aws": "roleArn", "eks-pod-identity": None, "gcp": "serviceAccount", "azure": "clientId"}
_FIELDS = {"roleArn": "role_arn", "serviceAccount": "service_account", "clientId": "client_id", "tenantId": "tenant_id"}
_OWNER = {"roleArn": "aws", "serviceAccount": "gcp", "clientId": "azure", "tenantId": "azure"}
# Identities the AWS SDK's credential chain turns into S3 keys; Google's and Azure's tokens sign no SigV4.
SIGNS_S3 = frozenset({"aws", "eks-pod-identity"})


def check_identity(spec: TrainingCluster) -> Iterator[SpecIssue]:
    """Every problem of spec.identity and of the S3 stores' credentials, located."""
    s = spec.spec
    ident = s.identity
    base = ("spec", "identity")
    if ident is not None:
        needed = NEEDS[ident.provider]
        if needed and getattr(ident, _FIELDS[needed]) is None:
            yield SpecIssue((*base, "provider"), f"provider {ident.provider} needs identity.{needed}", _example(needed))
        for alias, attr in _FIELDS.items():
            if getattr(ident, attr) is not None and _OWNER[alias] != ident.provider:
                yield SpecIssue(
                    (*base, alias),
                    f"{alias} is for provider {_OWNER[alias]}, not {ident.provider}",
                    f"remove {alias}, or set provider: {_OWNER[alias]}",
                )
        if s.service_account_name and ident.provider != "eks-pod-identity":
            yield SpecIssue(
                base,
                f"berth annotates only the ServiceAccount it renders; spec.serviceAccountName "
                f"{s.service_account_name} is yours",
                "annotate that ServiceAccount yourself (docs/storage.md#cloud-identity) and remove spec.identity, "
                "or remove serviceAccountName",
            )
    signs = ident is not None and ident.provider in SIGNS_S3
    stores: list[tuple[tuple[str, ...], str | None]] = []
    if s.archive is not None:
        stores.append((("spec", "archive"), s.archive.secret_name))
        if s.archive.secret_name is None and ident is None:
            yield SpecIssue(
                ("spec", "archive"),
                "the archive has no credentials: neither secretName nor spec.identity",
                "add secretName (a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or spec.identity",
            )
    for name, ds in s.datasets.items():
        if ds.source.startswith("s3://"):
            stores.append((("spec", "datasets", name), ds.secret_name))
    if ident is not None and not signs:
        for where, secret in stores:
            if secret is None:
                yield SpecIssue(
                    where,
                    f"berth's S3 client signs with AWS keys; the pods' {ident.provider} identity cannot sign "
                    "S3 requests",
                    "add secretName with the store's S3 keys (GCS: HMAC keys of the XML API; "
                    "Azure: an S3-compatible gateway's keys)",
                )


def _example(field: str) -> str:
    return {
        "roleArn": "e.g. roleArn: arn:aws:iam::111122223333:role/training-data",
        "serviceAccount": "e.g. serviceAccount: trainer@my-project.iam.gserviceaccount.com",
        "clientId": "e.g. clientId: 00000000-0000-0000-0000-000000000000 (the managed identity's client ID)",
    }[field]
