"""S3 credentials for berth's own SigV4 signer: static keys, or the pod's AWS identity, stdlib only.

``berth stage`` signs its URLs itself (runtime/stage.py ``_SigV4``) instead of through boto3; this
module gives it the same credentials the AWS SDK's chain would, in the same order:

1. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``): a Secret's keys;
2. web identity (EKS IRSA, what the pod-identity-webhook injects for ``spec.identity.provider: aws``):
   ``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE`` → one STS ``AssumeRoleWithWebIdentity``
   (unsigned; the projected token is the proof) → temporary keys and a session token;
3. container credentials (EKS Pod Identity): ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with the token of
   ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` as ``Authorization`` → the agent's temporary keys.

The STS endpoint is the SDK's: ``AWS_ENDPOINT_URL_STS``, else ``AWS_ENDPOINT_URL``, else the regional
``https://sts.<region>.amazonaws.com``. A failed exchange is one :class:`IdentityError` naming the
role and STS's own code (``InvalidIdentityToken``, ``AccessDenied``: the role's trust policy), never a
fall-through to anonymous requests.

Temporary keys expire (1 h by default for IRSA); a presigned URL stops working when its keys do, so a
stage longer than that needs a re-run, which resumes (docs/storage.md, "Not yet").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError

TIMEOUT_S = 10.0
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


class IdentityError(BerthError):
    """The pod's cloud identity could not be turned into S3 credentials."""


@dataclass(frozen=True)
class Credentials:
    """Keys to sign with; ``source`` says where they came from (for messages and tests)."""

    key_id: str
    secret: str
    token: str
    source: str
    expiration: str | None = None


def resolve(env: Mapping[str, str] | None = None) -> Credentials | None:
    """The first credentials of the chain (static keys, web identity, container); None: there are none."""
    env = os.environ if env is None else env
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return Credentials(key_id, secret, env.get("AWS_SESSION_TOKEN", ""), "static keys")
    if env.get("AWS_ROLE_ARN") and env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return web_identity(env)
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return container(env)
    return None


def _read_token(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise IdentityError(
            f"cannot read the {what} token {path}: {err.strerror}",
            "the identity webhook projects it into every container; is the pod's ServiceAccount annotated "
            "(spec.identity) and the webhook installed?",
        ) from None


def sts_endpoint(env: Mapping[str, str]) -> str:
    """Where AssumeRoleWithWebIdentity goes: the SDK's endpoint settings, else the regional AWS STS."""
    explicit = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL")
    if explicit:
        return explicit.rstrip("/") + "/"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}/"


def web_identity(env: Mapping[str, str]) -> Credentials:
    """One AssumeRoleWithWebIdentity with the projected token: temporary keys for ``AWS_ROLE_ARN``."""
    import urllib.error
    import urllib.parse
    import urllib.request
    import xml.etree.ElementTree as ET

    role = env["AWS_ROLE_ARN"]
    token = _read_token(env["AWS_WEB_IDENTITY_TOKEN_FILE"], "web identity")
    session = env.get("AWS_ROLE_SESSION_NAME") or f"berth-{env.get('POD_NAME') or os.getpid()}"
    form = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role,
            "RoleSessionName": session[:64],
            "WebIdentityToken": token,
        }
    ).encode()
    url = sts_endpoint(env)
    request = urllib.request.Request(url, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            body = resp.read()
    except urllib.error.HTTPError as err:
        code, message = _sts_error(err.read())
        raise IdentityError(
            f"STS refused AssumeRoleWithWebIdentity for {role}: {code or err.code}: {message}",
            "check the role's trust policy (the cluster's OIDC provider, system:serviceaccount:<ns>:<sa>) "
            "and spec.identity.roleArn",
        ) from None
    except OSError as err:
        raise IdentityError(f"cannot reach STS at {url}: {err}", "set AWS_REGION or AWS_ENDPOINT_URL_STS") from None
    try:
        creds = ET.fromstring(body).find(f"{STS_NS}AssumeRoleWithWebIdentityResult/{STS_NS}Credentials")
    except ET.ParseError:
        creds = None
    if creds is None:
        raise IdentityError(f"STS at {url} answered without credentials", "is AWS_ENDPOINT_URL_STS an STS endpoint?")

    def text(name: str) -> str:
        node = creds.find(f"{STS_NS}{name}")
        return node.text or "" if node is not None else ""

    return Credentials(
        text("AccessKeyId"), text("SecretAccessKey"), text("SessionToken"), f"web identity {role}", text("Expiration")
    )


def _sts_error(body: bytes) -> tuple[str, str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "", body.decode(errors="replace")[:200]
    code = root.find(f"{STS_NS}Error/{STS_NS}Code")
    message = root.find(f"{STS_NS}Error/{STS_NS}Message")
    return (code.text or "" if code is not None else ""), (message.text or "" if message is not None else "")


def container(env: Mapping[str, str]) -> Credentials:
    """EKS Pod Identity (or any container credentials endpoint): GET the URI with the projected token."""
    import json
    import urllib.error
    import urllib.request

    url = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    headers = {}
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        headers["Authorization"] = _read_token(token_file, "pod identity")
    elif env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"):
        headers["Authorization"] = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise IdentityError(
            f"the pod identity agent at {url} refused: HTTP {err.code} {err.read().decode(errors='replace')[:200]}",
            "is there a pod identity association for this namespace and ServiceAccount (aws eks "
            "list-pod-identity-associations)?",
        ) from None
    except (OSError, ValueError) as err:
        raise IdentityError(
            f"cannot get credentials from {url}: {err}", "is the EKS Pod Identity Agent running?"
        ) from None
    return Credentials(
        str(data.get("AccessKeyId") or ""),
        str(data.get("SecretAccessKey") or ""),
        str(data.get("Token") or ""),
        "EKS Pod Identity",
        data.get("Expiration"),
    )
