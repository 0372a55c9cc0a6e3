"""berth.runtime.http1 against real sockets: Python's http.server (HTTP/1.0 and 1.1) and a server that answers
with scripted bytes, for the framings an S3 store or a web server may send (chunked, until close, cut short)."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.runtime.http1 import Connection, ProtocolError

BODY = os.urandom(300_000)


class _Handler(http.server.BaseHTTPRequestHandler):
    connections: list[int]

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:
        body = BODY if self.path.startswith("/obj") else b"<Error><Code>NoSuchKey</Code></Error>"
        self.send_response(200 if self.path.startswith("/obj") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"abc"')
        self.send_header("X-Twice", "a")
        self.send_header("X-Twice", "b")
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("ETag", f'"{len(data)}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(version: str) -> Iterator[tuple[str, list[int]]]:
    handler = type("H", (_Handler,), {"protocol_version": version, "connections": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler.connections
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http11() -> Iterator[tuple[str, list[int]]]:
    yield from _serve("HTTP/1.1")


@pytest.fixture
def http10() -> Iterator[tuple[str, list[int]]]:
    yield from _serve("HTTP/1.0")


def _read_all(conn: Connection, target: str, chunk: int = 65536) -> tuple[int, bytes]:
    resp = conn.request("GET", target)
    buf, out = memoryview(bytearray(chunk)), bytearray()
    while n := resp.readinto(buf):
        out += buf[:n]
    return resp.status, bytes(out)


def test_one_connection_serves_many_requests_and_a_put_from_a_file(
    http11: tuple[str, list[int]], tmp_path: Path
) -> None:
    netloc, connections = http11
    conn = Connection("http", netloc, 10)
    for _ in range(3):
        assert _read_all(conn, "/obj") == (200, BODY)
    resp = conn.request("GET", "/missing")
    assert (resp.status, resp.read()) == (404, b"<Error><Code>NoSuchKey</Code></Error>")
    assert resp.header("etag") == '"abc"' and resp.header("X-Twice") == "a, b"
    src = tmp_path / "src"
    src.write_bytes(BODY)
    with src.open("rb") as f:
        put = conn.request("PUT", "/up", body=(f.fileno(), 1000, 5000))
        assert (put.status, put.read(), put.header("ETag")) == (200, b"", '"5000"')
    assert len(connections) == 1
    conn.close()


def test_a_response_left_unread_closes_the_connection_and_the_next_request_gets_its_own_answer(
    http11: tuple[str, list[int]],
) -> None:
    netloc, connections = http11
    conn = Connection("http", netloc, 10)
    resp = conn.request("GET", "/obj")
    assert resp.readinto(memoryview(bytearray(10))) == 10  # and the rest is never read
    assert _read_all(conn, "/missing")[0] == 404
    assert len(connections) == 2


def test_an_http10_server_closes_after_each_response(http10: tuple[str, list[int]]) -> None:
    netloc, connections = http10
    conn = Connection("http", netloc, 10)
    assert _read_all(conn, "/obj", 4096) == (200, BODY)
    assert conn.sock is None
    assert _read_all(conn, "/obj") == (200, BODY)
    assert len(connections) == 2


@pytest.fixture
def scripted() -> Iterator[tuple[str, list[bytes]]]:
    """A socket server that answers each connection's first request with the next scripted bytes, then closes."""
    answers: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with sock:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(65536)
                sock.sendall(answers.pop(0))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", answers
    finally:
        listener.close()


def test_chunked_bodies_and_bodies_that_end_with_the_connection(scripted: tuple[str, list[bytes]]) -> None:
    netloc, answers = scripted
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (BODY[:1000], BODY[1000:70_000]))
    answers += [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
        + b"0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY[:5000],
    ]
    assert _read_all(Connection("http", netloc, 10), "/", 3000) == (200, BODY[:70_000])
    assert _read_all(Connection("http", netloc, 10), "/") == (200, BODY[:5000])


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + BODY[:4000],  # cut short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n" + BODY[:100],
        b"HTTP/1.1 200 OK\r\nContent-Len",  # inside the headers
        b"SSH-2.0-OpenSSH\r\n",  # not HTTP
        b"",
    ],
)
def test_a_broken_answer_is_a_protocol_error(scripted: tuple[str, list[bytes]], answer: bytes) -> None:
    netloc, answers = scripted
    answers.append(answer)
    with pytest.raises(ProtocolError):
        _read_all(Connection("http", netloc, 10), "/")


def test_a_bad_port_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="bad port"):
        Connection("http", "127.0.0.1:http", 1).request("GET", "/")
