"""The in-pod API client's reports: a refusal points at the Role once, a pod already gone is quiet.

A real HTTP server on 127.0.0.1 answers with the status each test sets; the client is the one
``berth run`` uses (the cluster tests drive it against a real API server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from berth.runtime.kubeapi import Api, ApiConfig


class _Server(ThreadingHTTPServer):
    status = 200
    seen: list[tuple[str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers["Authorization"]))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def _api(server: _Server, tmp_path: Path, lines: list[str]) -> Api:
    token = tmp_path / "token"
    token.write_text("t0k\n")
    host, port = server.server_address[:2]
    return Api(ApiConfig(f"http://{host!s}:{port}", token, None), timeout=5, warn=lines.append)


def test_a_refusal_is_reported_once_and_points_at_the_role(server: _Server, tmp_path: Path) -> None:
    lines: list[str] = []
    api = _api(server, tmp_path, lines)
    server.status = 403
    assert not api.scale("ns", "demo", 0) and not api.scale("ns", "demo", 0)
    assert lines == [
        "berth run: cannot patch statefulsets/demo/scale in namespace ns: the API refused it (403 Forbidden); "
        "training continues without it (the Role berth renders grants it, see docs/rbac.md)"
    ]
    assert server.seen[0] == ("/apis/apps/v1/namespaces/ns/statefulsets/demo/scale", "Bearer t0k")
    server.status = 200
    assert api.scale("ns", "demo", 0)
    server.status = 403
    assert not api.scale("ns", "demo", 0)
    assert len(lines) == 2  # news again after a success


def test_a_pod_already_gone_is_quiet_but_a_missing_statefulset_is_not(server: _Server, tmp_path: Path) -> None:
    lines: list[str] = []
    api = _api(server, tmp_path, lines)
    server.status = 404
    assert not api.annotate_pod("ns", "demo-1", {"berth.dev/run": "{}"})
    assert lines == []  # scaled away or deleted: its annotation goes with it
    assert not api.annotate_statefulset("ns", "demo", {"berth.dev/run": "{}"})
    assert lines == [
        "berth run: cannot patch statefulsets/demo in namespace ns: 404 Not Found; training continues without it"
    ]
    assert [path for path, _ in server.seen] == [
        "/api/v1/namespaces/ns/pods/demo-1",
        "/apis/apps/v1/namespaces/ns/statefulsets/demo",
    ]
