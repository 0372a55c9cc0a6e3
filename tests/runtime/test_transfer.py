"""Ranged downloads against a real HTTP server that ignores Range (Python's http.server does)."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.runtime.transfer import RawHTTP, TransferError


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[str]:
    """Serve tmp_path on 127.0.0.1 with http.server, which answers every GET with 200 and the whole file."""
    (tmp_path / "obj").write_bytes(bytes(range(256)) * 16)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/obj"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_ignores_range_is_refused_rather_than_corrupting_the_file(
    plain_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "download"
    fd = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        buf = memoryview(bytearray(1024))
        http = RawHTTP(timeout=10)
        http.get_range_to_file(plain_server, fd, 0, 2048, buf)  # offset 0: the body's start is right
        with pytest.raises(TransferError, match="ignored the Range header"):
            http.get_range_to_file(plain_server, fd, 2048, 2048, buf)
    finally:
        os.close(fd)
    data = out.read_bytes()
    assert data == (bytes(range(256)) * 16)[:2048]  # nothing was written at the second part's offset
