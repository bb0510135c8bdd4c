"""The connections of Postwerk's unix-socket services (`unix_sockets`): answers go out in the order of the
requests, a failed answer ends the connection rather than let the next answer take its place, and a service
stops cleanly on SIGTERM with clients still connected (no error, no traceback, the socket removed)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from postwerk.unix_sockets import OrderedReplies, Reply
from tests.conftest import unix_exchange

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


class _Lines(OrderedReplies[bytes]):
    """Answers each line with it in capitals; `slow` a moment later; `fail` with an error."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = b""

    def requests(self, data: bytes) -> list[bytes]:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        return lines

    def reply(self, request: bytes) -> Reply:
        if request == b"slow":
            return self._later(b"SLOW\n")
        if request == b"fail":
            return self._failing()
        return request.upper() + b"\n"

    async def _later(self, answer: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return answer

    async def _failing(self) -> bytes:
        await asyncio.sleep(0.01)
        raise RuntimeError("a bug")


def _conversation(tmp_path: Path, payload: bytes) -> bytes:
    path = tmp_path / "lines.sock"

    def talk() -> bytes:
        return unix_exchange(path, payload, until=lambda received: received.endswith(b"END\n"))

    async def run() -> bytes:
        server = await asyncio.get_running_loop().create_unix_server(_Lines, path=str(path))
        async with server:
            return await asyncio.to_thread(talk)

    return asyncio.run(run())


def test_answers_keep_the_order_of_the_requests(tmp_path: Path) -> None:
    assert _conversation(tmp_path, b"a\nslow\nb\nend\n") == b"A\nSLOW\nB\nEND\n"


def test_a_failed_answer_ends_the_connection_rather_than_answer_the_next_request_in_its_place(
    tmp_path: Path,
) -> None:
    assert _conversation(tmp_path, b"a\nfail\nb\nend\n") == b"A\n"
