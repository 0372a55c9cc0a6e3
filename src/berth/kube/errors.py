"""API failures as one clear line and what to do: unreachable, forbidden, missing namespace, conflicts.

The API server's ``Status`` already names the resource, the verb and the user; these
functions keep that precision and add the hint a user needs (which flag, which doc).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from berth.errors import BerthError


class Endpoint(Protocol):
    """The cluster an error names: :class:`berth.kube.client.Kube` is one.

    A protocol rather than the client class, so this module stays a leaf the client imports.
    """

    @property
    def server(self) -> str:
        """The API server URL."""

    @property
    def context(self) -> str:
        """The kubeconfig context."""

    @property
    def namespace(self) -> str:
        """The namespace commands default to."""


class ClusterUnreachable(BerthError):
    """No API server answered (refused, DNS, TLS, timeout), even after retries."""


class Forbidden(BerthError):
    """RBAC denied a verb on a resource."""


class NamespaceMissing(BerthError):
    """The namespace a command targets does not exist."""


@dataclass(frozen=True)
class FieldConflict:
    """A field another field manager owns with a different value."""

    field: str
    manager: str
    message: str


class ApplyConflict(BerthError):
    """Server-side apply refused to take fields another manager owns."""

    def __init__(self, obj: str, conflicts: list[FieldConflict]) -> None:
        lines = "; ".join(f"{c.field} (owned by {c.manager})" for c in conflicts)
        super().__init__(
            f"{obj}: fields changed by another manager: {lines}",
            "rerun with --force-conflicts to take ownership (their change is overwritten), "
            "or put their value in the spec",
        )
        self.conflicts = conflicts


class Invalid(BerthError):
    """The API server rejected the object (validation, immutable fields)."""

    def __init__(self, message: str, hint: str | None, fields: list[str]) -> None:
        super().__init__(message, hint)
        self.fields = fields


def _status_parts(err: BaseException) -> tuple[int, str, str, dict[str, Any]]:
    """(code, reason, message, details) of an ApiError, lightkube's typed Status flattened."""
    from lightkube import ApiError

    assert isinstance(err, ApiError)
    st = err.status
    details: dict[str, Any] = {}
    if st.details is not None:
        details = {
            "name": st.details.name,
            "kind": st.details.kind,
            "causes": [{"field": c.field, "message": c.message, "reason": c.reason} for c in (st.details.causes or [])],
        }
    return int(st.code or 0), str(st.reason or ""), str(st.message or ""), details


_CONFLICT_MANAGER = re.compile(r'conflict with "([^"]+)"')


def conflicts_from(details: dict[str, Any]) -> list[FieldConflict]:
    """Fields and owners from a 409 apply conflict's causes (``conflict with "kubectl" using apps/v1``)."""
    out = []
    for cause in details.get("causes", []):
        msg = str(cause.get("message") or "")
        owner = _CONFLICT_MANAGER.search(msg)
        out.append(
            FieldConflict(
                field=str(cause.get("field") or "?"),
                manager=owner.group(1) if owner else "another manager",
                message=msg,
            )
        )
    return out


def translate(err: BaseException, what: str, kube: Endpoint, *, gave_up_after_s: float | None = None) -> BerthError:
    """A BerthError for ``err`` raised while doing ``what``; bugs pass through unchanged."""
    import httpx2
    from lightkube import ApiError

    where = f"{kube.server} (context {kube.context})"
    retried = f" after retrying for {gave_up_after_s:.0f}s" if gave_up_after_s else ""
    if isinstance(err, BerthError):
        return err
    if isinstance(err, ApiError):
        code, reason, message, details = _status_parts(err)
        return translate_status(
            code, json.dumps({"reason": reason, "message": message, "details": details}), what, kube, retried=retried
        )
    if isinstance(err, httpx2.HTTPStatusError):
        return translate_status(err.response.status_code, err.response.text, what, kube, retried=retried)
    if isinstance(err, httpx2.TransportError):
        cause = str(err) or type(err).__name__
        return ClusterUnreachable(
            f"no cluster reachable at {where}{retried}: {cause} (while trying to {what})",
            "is the cluster up? check --kubeconfig/--context, or start a local one with `berth sandbox up`",
        )
    raise err


def translate_status(code: int, body: str, what: str, kube: Endpoint, *, retried: str = "") -> BerthError:
    """A BerthError from an HTTP status and its (JSON Status or plain) body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {"message": body.strip()[:300]}
    message = str(parsed.get("message") or f"HTTP {code}")
    details: dict[str, Any] = parsed.get("details") or {}
    reason = str(parsed.get("reason") or "")
    if code == 401:
        return BerthError(
            f"the cluster at {kube.server} rejected berth's credentials ({message})",
            f"refresh the credentials of context {kube.context}",
        )
    if code == 403:
        return Forbidden(
            f"forbidden: {message}",
            "berth needs the Role in docs/rbac.md; ask an admin to bind it, or use another --context",
        )
    if code == 404 and details.get("kind") == "namespaces":
        ns = details.get("name") or kube.namespace
        return NamespaceMissing(
            f"namespace {ns} does not exist (while trying to {what})",
            f"create it (kubectl create namespace {ns}) or pass -n with an existing one",
        )
    if code == 409 and reason == "Conflict" and details.get("causes"):
        return ApplyConflict(what, conflicts_from(details))
    if code == 422:
        causes = details.get("causes") or []
        fields = [str(c.get("field") or "") for c in causes]
        return Invalid(f"{what}: rejected by the API server: {message}", _invalid_hint(message), fields)
    if code in (429, 500, 502, 503, 504):
        return ClusterUnreachable(
            f"the API server at {kube.server} kept failing{retried}: HTTP {code} {message} (while trying to {what})",
            "the cluster is overloaded or restarting; rerun when it is healthy (berth's apply is idempotent)",
        )
    return BerthError(f"{what}: HTTP {code}: {message}")


def _invalid_hint(message: str) -> str | None:
    if "updates to statefulset spec for fields other than" in message:
        return (
            "a StatefulSet's volumeClaimTemplates, selector and serviceName cannot change in place; "
            "see `berth plan` for the exact field"
        )
    if "field is immutable" in message:
        return "this field cannot change in place: delete and recreate the object, or keep the old value"
    return None
