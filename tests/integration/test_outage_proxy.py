"""The outage proxy the browser tests cut: it really cuts, really restores, and leaves no socket
behind for the garbage collector (a leaked one would be reported in some later test)."""

from __future__ import annotations

import gc
import socket
import socketserver
import threading
import warnings
from collections.abc import Iterator

import pytest

from tests.integration.web_helpers import CuttableProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def test_cut_refuses_and_resets_restore_serves_again_and_close_leaks_nothing(echo_port: int) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        proxy = CuttableProxy(echo_port)
        assert _round_trip(proxy.port, b"before") == b"before"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"x")
        assert held.recv(10) == b"x"
        proxy.cut()
        with pytest.raises(ConnectionRefusedError):
            _round_trip(proxy.port, b"during")
        try:
            got = held.recv(10)  # the open one was reset: an error, or the end of the stream
        except ConnectionResetError:
            got = b""
        assert got == b"", "a connection survived the cut"
        held.close()
        proxy.restore()
        assert _round_trip(proxy.port, b"after") == b"after"
        open_at_close = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        open_at_close.sendall(b"z")
        assert open_at_close.recv(10) == b"z"
        proxy.close()
        open_at_close.close()
        del proxy
        gc.collect()
    leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, [str(w.message) for w in leaked]
