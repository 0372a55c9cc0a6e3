"""A keep-alive HTTP/1.1 client connection with only what presigned S3 requests need.

Why not ``http.client``: importing it (with the email parser it builds headers with, and ssl)
cost ~35 ms of every ``berth stage`` and archive process before the first byte moved, and parsing
each response's headers through the email parser ~38 µs of CPU: 0.4 s for 10,000 small objects,
on the same two cores as the object store. Here the status line and headers are split by hand
(each request reads one response, then the next one goes out on the same socket), bodies come
by ``Content-Length``, ``chunked`` or until the server closes, ``readinto`` goes through a buffered
reader straight into the caller's buffer, and ssl is imported only for ``https://``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_MAX_LINE = 65536
_MAX_HEADERS = 100
_READ_BUFFER = 64 << 10  # a small object's response (headers and body) in one recv


class ProtocolError(ConnectionError):
    """The server's answer broke off or is not HTTP/1.x: the connection is dropped (and a request retried)."""


def _split_netloc(scheme: str, netloc: str) -> tuple[str, int]:
    if netloc.startswith("["):  # [::1]:9000
        host, _, port = netloc[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        raise ProtocolError(f"bad port in {netloc!r}")
    return host, int(port) if port else 443 if scheme == "https" else 80


class Response:
    """One response: ``status``, ``headers`` (lower-case names) and its body, read once, in order."""

    def __init__(self, conn: Connection, method: str) -> None:
        self._conn = conn
        conn.pending = self
        rfile = conn.rfile
        while True:
            line = rfile.readline(_MAX_LINE)
            version, _, rest = line.decode("latin-1").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise ProtocolError(f"not an HTTP/1.x response: {line[:80]!r}")
            self.status = int(code)
            self.headers = self._headers()
            if not 100 <= self.status < 200:  # 1xx: informational, the real answer follows
                break
        connection = self.headers.get("connection", "").lower()
        self.will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        length = self.headers.get("content-length")
        self._left: int | None  # body bytes still to come; None: chunked, or until the server closes
        if method == "HEAD" or self.status in (204, 304):
            self._left = 0
        elif self._chunked:
            self._left = None
        elif length is not None and length.strip().isdigit():
            self._left = int(length)
        else:
            self._left, self.will_close = None, True
        self.done = self._left == 0
        if self.done:
            conn.finished(self)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._conn.rfile.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise ProtocolError("the connection closed inside the response headers")
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        raise ProtocolError(f"more than {_MAX_HEADERS} response headers")

    def header(self, name: str) -> str | None:
        """A header's value (several of the same name joined by ", "); None when absent."""
        return self.headers.get(name.lower())

    def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` with the next bytes of the body (less only at its end); 0 once it is all read."""
        if self.done or not len(buf):
            return 0
        rfile = self._conn.rfile
        if self._chunked:
            if not self._chunk_left and not self._next_chunk():
                return 0
            want = min(len(buf), self._chunk_left)
        else:
            want = len(buf) if self._left is None else min(len(buf), self._left)
        got: int = rfile.readinto(buf[:want])
        if not got:
            if self._left is None and not self._chunked:  # the body ends where the connection does
                self._finish()
                return 0
            raise ProtocolError("the connection closed inside the response body")
        if self._chunked:
            self._chunk_left -= got
            if not self._chunk_left:
                rfile.readline(_MAX_LINE)  # the CRLF after the chunk's data
        elif self._left is not None:
            self._left -= got
            if not self._left:
                self._finish()
        return got

    def _next_chunk(self) -> bool:
        line = self._conn.rfile.readline(_MAX_LINE)
        size = line.split(b";", 1)[0].strip()
        try:
            self._chunk_left = int(size, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
        if self._chunk_left:
            return True
        while self._conn.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        self._finish()
        return False

    def read(self) -> bytes:
        """The rest of the body."""
        out = bytearray()
        buf = memoryview(bytearray(_READ_BUFFER))
        while n := self.readinto(buf):
            out += buf[:n]
        return bytes(out)

    def _finish(self) -> None:
        self.done = True
        self._conn.finished(self)


class Connection:
    """One persistent connection to ``scheme://netloc``, opened on the first request and again after a close.

    A response must be read to its end before the next request; one that was not (an error raised
    midway) closes the connection, and the next request opens a new one.
    """

    def __init__(self, scheme: str, netloc: str, timeout: float) -> None:
        self.scheme, self.netloc, self.timeout = scheme, netloc, timeout
        self.sock: socket.socket | None = None
        self.rfile: Any = None
        self.pending: Response | None = None  # the response not yet read to its end

    def _open(self) -> socket.socket:
        host, port = _split_netloc(self.scheme, self.netloc)
        sock = socket.create_connection((host, port), self.timeout)
        if self.scheme == "https":
            import ssl

            context = ssl.create_default_context()  # verifies the server, as http.client's does
            context.set_alpn_protocols(["http/1.1"])
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock, self.rfile = sock, sock.makefile("rb", buffering=_READ_BUFFER)
        return sock

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        *,
        body: tuple[int, int, int] | None = None,
    ) -> Response:
        """Send a request, read its response's head; ``body``: ``(fd, offset, size)`` of a file to sendfile."""
        if self.pending is not None:  # the last response was not read to its end: its bytes would come next
            self.close()
        sock = self.sock or self._open()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {body[2]}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body is not None:
            fd, offset, size = body
            with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
                sent = sock.sendfile(f, offset, size)
            if sent != size:
                raise ProtocolError(f"sent {sent} of {size} bytes")
        return Response(self, method)

    def finished(self, response: Response) -> None:
        """``response`` was read to its end: the connection is free (or closed, if the server said so)."""
        if self.pending is response:
            self.pending = None
            if response.will_close:
                self.close()

    def close(self) -> None:
        """Close the socket; the next request opens a new one."""
        self.pending = None
        if self.rfile is not None:
            self.rfile.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.rfile = None
