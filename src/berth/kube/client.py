"""A lightkube client chosen like kubectl chooses one, with bounded retries and a request count.

Every cluster command goes through :class:`Kube`: it resolves ``--kubeconfig`` /
``--context`` / ``-n`` the way kubectl does, retries what a restarting or overloaded
API server answers (connection refused, timeouts, 429, 5xx) with capped exponential
backoff, and counts HTTP requests so benchmarks can report them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2

from berth.contract import FIELD_MANAGER
from berth.errors import BerthError
from berth.kube.errors import translate, translate_status

if TYPE_CHECKING:
    from lightkube import Client
    from lightkube.core.resource import Resource

T = TypeVar("T")
R = TypeVar("R", bound="Resource")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Target:
    """Where to talk to: kubeconfig file, context and namespace, each optional like kubectl's flags."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


@dataclass
class RetryPolicy:
    """Capped exponential backoff; ``budget_s`` bounds the total time spent waiting on one call."""

    budget_s: float = 30.0
    first_delay_s: float = 0.2
    max_delay_s: float = 3.0

    def delays(self) -> Iterator[float]:
        """Sleep lengths until the budget is spent."""
        spent, delay = 0.0, self.first_delay_s
        while spent + delay <= self.budget_s:
            yield delay
            spent += delay
            delay = min(delay * 2, self.max_delay_s)


def default_retry() -> RetryPolicy:
    """30 s of retries per call; ``BERTH_API_RETRY_S`` changes the budget (0 disables retries)."""
    raw = os.environ.get("BERTH_API_RETRY_S", "")
    try:
        return RetryPolicy(budget_s=float(raw)) if raw else RetryPolicy()
    except ValueError:
        raise BerthError(f"BERTH_API_RETRY_S={raw!r} is not a number of seconds") from None


def _kubeconfig_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    parts = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    # kubectl merges a colon-separated list; berth uses its first existing file. A KUBECONFIG
    # naming no existing file is reported as such, not silently replaced by ~/.kube/config.
    return next((p for p in parts if p.is_file()), parts[0] if parts else Path("~/.kube/config").expanduser())


def _one_line(err: Exception) -> str:
    """A YAML error as ``line L, column C: problem`` instead of PyYAML's multi-line snippet."""
    import yaml

    mark = getattr(err, "problem_mark", None)
    if isinstance(err, yaml.MarkedYAMLError) and mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
    return " ".join(str(err).split())


def is_transient(err: BaseException) -> bool:
    """Errors worth retrying: the server is restarting, overloaded or slow, not wrong."""
    from lightkube import ApiError

    if isinstance(err, ApiError):
        return err.status.code in RETRY_STATUS
    if isinstance(err, httpx2.HTTPStatusError):
        return err.response.status_code in RETRY_STATUS
    return isinstance(err, httpx2.TransportError)


class CountingTransport(httpx2.BaseTransport):
    """Counts every HTTP request sent through ``inner``; lightkube and :attr:`Kube.http` share one.

    Counting at the transport sees each request exactly once, retries and requests made
    straight through ``kube.client`` included, without reaching into lightkube's internals.
    """

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.requests = 0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Count, then send."""
        self.requests += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        """Close the shared connection pool (closing it twice is harmless)."""
        self.inner.close()


@dataclass
class Kube:
    """A connected client: lightkube plus retries, request counting and clear errors.

    ``http`` is a plain client on the same server, credentials and connection pool, for
    paths lightkube has no model for (API discovery).
    """

    client: Client
    http: httpx2.Client
    server: str
    context: str
    namespace: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: CountingTransport | None = None
    retries: int = 0
    on_retry: Callable[[BaseException, float], None] | None = None

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (0 without a counting transport)."""
        return self.transport.requests if self.transport else 0

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one API call, retrying transient failures within the budget; map the rest to BerthErrors."""
        delays = self.retry.delays()
        while True:
            try:
                return fn()
            except Exception as err:
                if not is_transient(err):
                    raise translate(err, what, self) from None
                delay = next(delays, None)
                if delay is None:
                    raise translate(err, what, self, gave_up_after_s=self.retry.budget_s) from None
                self.retries += 1
                if self.on_retry:
                    self.on_retry(err, delay)
                time.sleep(delay)

    def get_or_none(self, model: type[R], name: str, namespace: str | None = None) -> R | None:
        """Read one object through :meth:`call`; None when it does not exist (404), any other error raises."""
        from lightkube import ApiError

        def get() -> R | None:
            try:
                found: R = self.client.get(model, name, namespace=namespace)  # type: ignore[type-var]
            except ApiError as err:
                if err.status.code == 404:
                    return None
                raise
            return found

        return self.call(f"read {object_ref(model.__name__, name, namespace)}", get)

    def delete(self, model: type[Resource], name: str, namespace: str | None) -> None:
        """Delete one object through :meth:`call`; one already gone counts as deleted.

        Dependents go in the background, as with kubectl: the API's default for a batch/v1 Job is to
        orphan its pods, which would leave a populate Job's pod behind after `down`.
        """
        from lightkube import ApiError
        from lightkube.types import CascadeType

        def delete() -> None:
            try:
                self.client.delete(model, name, namespace=namespace, cascade=CascadeType.BACKGROUND)  # type: ignore[type-var]
            except ApiError as err:
                if err.status.code != 404:
                    raise

        self.call(f"delete {object_ref(model.__name__, name, namespace)}", delete)

    def raw_get(self, path: str) -> httpx2.Response:
        """GET a path lightkube has no model for (API discovery); the caller checks the status."""
        return self.call(f"GET {path}", lambda: _checked(self.http.get(path)))

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
        self.http.close()


def object_ref(kind: str, name: str, namespace: str | None) -> str:
    """``StatefulSet ml/trainer`` or ``Namespace ml``: how messages name an object."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _checked(resp: httpx2.Response) -> httpx2.Response:
    # 404 is an answer (group not served); 5xx/429 raise so call() retries them.
    if resp.status_code in RETRY_STATUS:
        resp.raise_for_status()
    return resp


def connect(target: Target, *, retry: RetryPolicy | None = None, timeout_s: float = 15.0) -> Kube:
    """Build a client for ``target``; raises BerthError when the kubeconfig or context is unusable."""
    from lightkube import Client, ConfigError, KubeConfig
    from lightkube.config.client_adapter import user_auth, verify_cluster

    path = _kubeconfig_path(target.kubeconfig)
    try:
        kubeconfig = KubeConfig.from_file(path)
    except ConfigError:
        raise BerthError(
            f"no kubeconfig at {path}",
            "pass --kubeconfig, set KUBECONFIG, or start a local cluster with `berth sandbox up`"
            " and `eval $(berth sandbox env)`",
        ) from None
    except Exception as err:  # a YAML, encoding or schema problem in the file
        raise BerthError(
            f"cannot read kubeconfig {path}: {_one_line(err)}", "check the file with `kubectl config view`"
        ) from None
    try:
        config = kubeconfig.get(target.context)
    except ConfigError:
        contexts = ", ".join(sorted(kubeconfig.contexts)) or "none"
        problem = f"context {target.context} not found" if target.context else "no current-context set"
        raise BerthError(f"{problem} in {path}", f"contexts there: {contexts}; pick one with --context") from None
    except KeyError as err:
        raise BerthError(f"kubeconfig {path} refers to a missing cluster or user {err}") from None
    assert config is not None
    if config.user is None:
        raise BerthError(f"context {config.context_name} of {path} names no user")
    namespace = target.namespace or config.namespace or "default"
    timeout = httpx2.Timeout(timeout_s)
    try:
        verify = verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False)
        transport = CountingTransport(httpx2.HTTPTransport(verify=verify, trust_env=False))
        client = Client(
            config,
            namespace=namespace,
            field_manager=FIELD_MANAGER,
            timeout=timeout,
            trust_env=False,
            transport=transport,
        )
        http = httpx2.Client(
            base_url=str(config.cluster.server),
            auth=user_auth(config.user),
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )
    except (ConfigError, OSError) as err:
        raise BerthError(f"cannot use context {config.context_name} of {path}: {err}") from None
    return Kube(
        client=client,
        http=http,
        server=str(config.cluster.server),
        context=str(config.context_name),
        namespace=namespace,
        retry=retry or default_retry(),
        transport=transport,
    )


def resource_type(api_version: str, kind: str) -> type[Resource] | None:
    """lightkube's model for a built-in kind; None for kinds served by a CRD."""
    from lightkube.core.exceptions import LoadResourceError
    from lightkube.core.resource_registry import resource_registry
    from lightkube.generic_resource import Generic

    try:
        model: type[Resource] = resource_registry.load(api_version, kind)
    except (LoadResourceError, ImportError):
        return None
    # A generic model registered by an earlier discovery is not proof the CRD is still served.
    return None if issubclass(model, Generic) else model


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def discover(kube: Kube, api_version: str, kind: str) -> type[Resource] | None:
    """A generic model for a CRD-served kind, or None when the cluster does not serve it."""
    from lightkube.generic_resource import create_global_resource, create_namespaced_resource

    group, version = _group_version(api_version)
    resp = kube.raw_get(f"/apis/{group}/{version}" if group else f"/api/{version}")
    if resp.status_code == 404:
        return None
    if resp.status_code >= 400:
        raise translate_status(resp.status_code, resp.text, f"discover {api_version}", kube)
    for item in resp.json().get("resources", []):
        if item.get("kind") == kind and "/" not in item.get("name", ""):
            make = create_namespaced_resource if item.get("namespaced") else create_global_resource
            model: type[Resource] = make(group, version, kind, item["name"])
            return model
    return None


def model_for(
    kube: Kube, obj: dict[str, Any], cache: dict[tuple[str, str], type[Resource] | None]
) -> type[Resource] | None:
    """Resolve the lightkube model of a rendered object (built-in, CRD, or None when absent)."""
    key = (obj["apiVersion"], obj["kind"])
    if key not in cache:
        cache[key] = resource_type(*key) or discover(kube, *key)
    return cache[key]
