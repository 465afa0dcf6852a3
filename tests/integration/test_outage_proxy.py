"""The outage proxy the browser tests cut: it really cuts, really restores, and leaves no socket
behind for the garbage collector (a leaked one would be reported in some later test).

The scenario runs in a fresh interpreter: there, any ``ResourceWarning`` is the proxy's own, not
garbage an earlier test of this session left for the collector to find."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = r"""
import gc, socket, socketserver, threading, warnings
from tests.integration.web_helpers import CuttableProxy

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(4096):
            self.request.sendall(data)

def round_trip(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        return conn.recv(4096)

server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
echo = server.server_address[1]
gc.collect()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ResourceWarning)
    proxy = CuttableProxy(echo)
    assert round_trip(proxy.port, b"before") == b"before"
    held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    held.sendall(b"x")
    assert held.recv(10) == b"x"
    proxy.cut()
    try:
        round_trip(proxy.port, b"during")
        raise AssertionError("a connection was accepted during the cut")
    except ConnectionRefusedError:
        pass
    try:
        got = held.recv(10)  # the open one was reset: an error, or the end of the stream
    except ConnectionResetError:
        got = b""
    assert got == b"", "a connection survived the cut"
    held.close()
    proxy.restore()
    assert round_trip(proxy.port, b"after") == b"after"
    open_at_close = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    open_at_close.sendall(b"z")
    assert open_at_close.recv(10) == b"z"
    proxy.close()
    open_at_close.close()
    del proxy
    gc.collect()
server.shutdown()
server.server_close()
leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
assert not leaked, leaked
print("ok")
"""


def test_cut_refuses_and_resets_restore_serves_again_and_close_leaks_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCENARIO], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "ok"
