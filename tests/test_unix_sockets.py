"""Postwerk's unix-socket services stop cleanly on SIGTERM, also with clients still connected: no error and
no traceback in their log (an operator reads every one as a fault), the socket removed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

SERVICE = """
import asyncio, logging, sys
from pathlib import Path
from postwerk.unix_sockets import OrderedReplies, serve_unix

logging.basicConfig(level=logging.INFO)

class Echo(OrderedReplies[bytes]):
    def requests(self, data):
        return [data]

    def reply(self, request):
        return request

path = Path(sys.argv[1])
asyncio.run(serve_unix(path, protocol=Echo, group=None, mode=0o600, log=logging.getLogger("test")))
"""


def test_a_service_stops_on_sigterm_without_an_error_while_clients_are_connected(tmp_path: Path) -> None:
    path = tmp_path / "service.sock"
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline and service.poll() is None, "the service did not start"
            time.sleep(0.02)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(path))
            client.sendall(b"ping")
            assert client.recv(100) == b"ping"
            service.terminate()
            _, log = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=10)
    assert service.returncode == 0, log
    assert "Traceback" not in log and "ERROR" not in log, log
    assert "stopped" in log and not path.exists()
