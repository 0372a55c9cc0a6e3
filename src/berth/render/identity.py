"""``spec.identity`` → what each cloud's admission webhook or metadata server acts on.

- **EKS IRSA** (``aws``): ``eks.amazonaws.com/role-arn`` on the ServiceAccount. The
  pod-identity-webhook then adds ``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE`` and a projected
  token volume of its own (``aws-iam-token``, audience ``sts.amazonaws.com``) to every container,
  init containers included; the AWS SDK exchanges the token with STS AssumeRoleWithWebIdentity.
- **EKS Pod Identity** (``eks-pod-identity``): nothing in the cluster's objects. An association
  (``aws eks create-pod-identity-association``) names namespace + ServiceAccount + role; the EKS
  webhook adds ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and its own token volume.
- **GKE Workload Identity** (``gcp``): ``iam.gke.io/gcp-service-account`` on the ServiceAccount;
  the node's GKE metadata server answers for it (no volume, no env).
- **Azure Workload Identity** (``azure``): ``azure.workload.identity/client-id`` (and tenant) on the
  ServiceAccount and the label ``azure.workload.identity/use: "true"`` on the pod (the webhook
  selects pods by it); the webhook adds ``AZURE_*`` env and its own token volume.

None of them needs the pod's API token: each webhook projects a token of its own audience, a
volume separate from ``automountServiceAccountToken`` (amazon-eks-pod-identity-webhook's
``getPodSpecPatch``, azure-workload-identity's ``addProjectedVolume``), so berth keeps the API
token unmounted (training pods never call the API unless ``spec.lifecycle`` asks).
"""

from __future__ import annotations

from berth.contract import (
    ANNOTATION_AZURE_CLIENT_ID,
    ANNOTATION_AZURE_TENANT_ID,
    ANNOTATION_EKS_ROLE_ARN,
    ANNOTATION_GKE_SERVICE_ACCOUNT,
    LABEL_AZURE_USE,
)
from berth.spec.model import TrainingCluster


def service_account_annotations(spec: TrainingCluster) -> dict[str, str]:
    """The annotations of berth's ServiceAccount for the spec's identity (empty without one)."""
    ident = spec.spec.identity
    if ident is None:
        return {}
    if ident.provider == "aws" and ident.role_arn:
        return {ANNOTATION_EKS_ROLE_ARN: ident.role_arn}
    if ident.provider == "gcp" and ident.service_account:
        return {ANNOTATION_GKE_SERVICE_ACCOUNT: ident.service_account}
    if ident.provider == "azure" and ident.client_id:
        out = {ANNOTATION_AZURE_CLIENT_ID: ident.client_id}
        if ident.tenant_id:
            out[ANNOTATION_AZURE_TENANT_ID] = ident.tenant_id
        return out
    return {}


def pod_labels(spec: TrainingCluster) -> dict[str, str]:
    """Labels every pod of the cluster needs for its identity (the trainers and the populate Job's)."""
    ident = spec.spec.identity
    return {LABEL_AZURE_USE: "true"} if ident is not None and ident.provider == "azure" else {}
