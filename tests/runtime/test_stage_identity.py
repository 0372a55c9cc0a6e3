"""`berth stage` and the archive with the pod's AWS identity instead of keys (spec.identity).

STS and the EKS Pod Identity agent cannot run here, so a local stand-in (an HTTP server in this
test) answers the two calls the way AWS documents them: ``AssumeRoleWithWebIdentity`` (form POST,
XML answer) for IRSA's web identity, and the container-credentials GET (``Authorization`` = the
projected token, JSON answer) for EKS Pod Identity. It hands out the SeaweedFS keys as the
"temporary" ones and refuses a wrong token as STS does. SeaweedFS checks an ``X-Amz-Security-Token``
against sessions it issued itself, so the keys it is given for SeaweedFS carry no session token;
that a session token is parsed and signed into the URL is checked on its own. Everything else is
real: SeaweedFS, berth's own SigV4 signer (stage, via runtime/cloudcreds.py) and botocore's
credential chain (archive).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from berth.runtime import cloudcreds
from berth.runtime.stage import stage

from ..conftest import berth_process
from .conftest import ACCESS_KEY, SECRET_KEY, Seaweed

ROLE = "arn:aws:iam::111122223333:role/training-data"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig"  # opaque to berth: passed on as is
SESSION = "stand-in-session-token"


@dataclass
class StandIn:
    """The stand-in's address and every call it answered."""

    url: str
    calls: list[dict[str, str]] = field(default_factory=list)
    session: list[str] = field(default_factory=lambda: [""])  # the SessionToken it hands out


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    calls: list[dict[str, str]] = []
    session = [""]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, code: int, body: str, kind: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # AssumeRoleWithWebIdentity
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            calls.append(form)
            ns = "https://sts.amazonaws.com/doc/2011-06-15/"
            if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("WebIdentityToken") != TOKEN:
                error = "<Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message>"
                self._answer(400, f'<ErrorResponse xmlns="{ns}"><Error>{error}</Error></ErrorResponse>', "text/xml")
                return
            creds = (
                f"<AccessKeyId>{ACCESS_KEY}</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey>"
                f"<SessionToken>{session[0]}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
            )
            result = (
                f"<AssumeRoleWithWebIdentityResult><Credentials>{creds}</Credentials></AssumeRoleWithWebIdentityResult>"
            )
            self._answer(
                200,
                f'<AssumeRoleWithWebIdentityResponse xmlns="{ns}">{result}</AssumeRoleWithWebIdentityResponse>',
                "text/xml",
            )

        def do_GET(self) -> None:  # the EKS Pod Identity agent
            calls.append({"path": self.path, "Authorization": self.headers.get("Authorization", "")})
            if self.headers.get("Authorization") != TOKEN:
                self._answer(403, "credentials refused", "text/plain")
                return
            body = {
                "AccessKeyId": ACCESS_KEY,
                "SecretAccessKey": SECRET_KEY,
                "Token": session[0],
                "Expiration": "2099-01-01T00:00:00Z",
            }
            self._answer(200, json.dumps(body), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StandIn(f"http://127.0.0.1:{server.server_address[1]}", calls, session)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _files(seaweed: Seaweed, s3: str) -> tuple[str, dict[str, bytes]]:
    bucket = s3.split("/")[2]
    files = {"a.bin": b"a" * 70_000, "sub/b.txt": b"hello from the role"}
    for name, data in files.items():
        seaweed.client().put_object(Bucket=bucket, Key=f"data/{name}", Body=data)
    return f"s3://{bucket}/data", files


def _no_keys(monkeypatch: pytest.MonkeyPatch, token: Path, text: str = TOKEN) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    token.write_text(text)


def test_stage_signs_with_the_roles_keys(
    seaweed: Seaweed, s3: str, stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, files = _files(seaweed, s3)
    token = tmp_path / "token"
    _no_keys(monkeypatch, token)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", stand_in.url)
    stats = stage(source, tmp_path / "vol")
    assert stats.fetched == len(files)
    assert {p: (tmp_path / "vol" / p).read_bytes() for p in files} == files
    assume = [c for c in stand_in.calls if c.get("Action") == "AssumeRoleWithWebIdentity"]
    assert len(assume) == 1  # once for the listing and every URL
    assert all(c["RoleArn"] == ROLE and c["WebIdentityToken"] == TOKEN for c in assume)


def test_stage_with_eks_pod_identity(
    seaweed: Seaweed, s3: str, stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, files = _files(seaweed, s3)
    token = tmp_path / "eks-pod-identity-token"
    _no_keys(monkeypatch, token)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{stand_in.url}/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    stats = stage(source, tmp_path / "vol")
    assert stats.fetched == len(files)
    assert stand_in.calls == [{"path": "/v1/credentials", "Authorization": TOKEN}]


def test_a_refused_identity_is_one_clear_line(
    seaweed: Seaweed, s3: str, stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = _files(seaweed, s3)
    token = tmp_path / "token"
    _no_keys(monkeypatch, token, "a-token-for-another-audience")
    env = {"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ENDPOINT_URL_STS": stand_in.url}
    done = berth_process("stage", source, str(tmp_path / "vol"), env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert (
        first
        == f"error: STS refused AssumeRoleWithWebIdentity for {ROLE}: InvalidIdentityToken: Incorrect token audience"
    )
    assert "trust policy" in done.stderr
    assert not (tmp_path / "vol").exists() or not any((tmp_path / "vol").iterdir())
    missing = berth_process(
        "stage", source, str(tmp_path / "vol"), env={**env, "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token"}
    )
    assert missing.returncode == 1 and "cannot read the web identity token /nonexistent/token" in missing.stderr


def test_the_archive_gets_the_roles_keys_from_botocore(
    seaweed: Seaweed, s3: str, stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runtime/archive.py's boto3 client: botocore's own web identity provider, STS at AWS_ENDPOINT_URL_STS."""
    from berth.runtime.archive import make_client

    token = tmp_path / "token"
    _no_keys(monkeypatch, token)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", stand_in.url)
    client = make_client()
    bucket = s3.split("/")[2]
    client.put_object(Bucket=bucket, Key="run/probe", Body=b"archived with the role's keys")
    assert (
        seaweed.client().get_object(Bucket=bucket, Key="run/probe")["Body"].read() == b"archived with the role's keys"
    )
    assert [c.get("RoleArn") for c in stand_in.calls] == [ROLE]


def test_a_session_token_is_parsed_and_signed_into_the_urls(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from berth.runtime.stage import _env_signer

    token = tmp_path / "token"
    _no_keys(monkeypatch, token)
    stand_in.session[0] = SESSION
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", stand_in.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    creds = cloudcreds.resolve()
    assert creds == cloudcreds.Credentials(
        ACCESS_KEY, SECRET_KEY, SESSION, f"web identity {ROLE}", "2099-01-01T00:00:00Z"
    )
    signer = _env_signer("bucket")
    assert signer is not None
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signer.url("k")).query))
    assert query["X-Amz-Security-Token"] == SESSION and query["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    monkeypatch.delenv("AWS_ROLE_ARN")
    assert cloudcreds.resolve() is None and _env_signer("bucket") is None  # no identity, no keys: boto3's chain
