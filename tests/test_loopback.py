"""Ports for throw-away listeners: below the ephemeral range (where outgoing connections take their source
ports), free when handed out, and never the same twice."""

from __future__ import annotations

import random
import socket

import pytest

from postwerk import loopback
from postwerk.loopback import LOWEST, MIN_CHOICE, _first_ephemeral_port, free_loopback_port


def test_ports_are_free_distinct_and_never_source_ports_of_outgoing_connections() -> None:
    ports = [free_loopback_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral - LOWEST >= MIN_CHOICE:
        assert all(LOWEST <= port < first_ephemeral for port in ports)
    for port in ports[:5]:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral - LOWEST < MIN_CHOICE:
        pytest.skip("this machine's ephemeral range leaves no ports below it to choose from")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_loopback_port()))
        taken.listen()
        occupied = int(taken.getsockname()[1])
        # The occupied port is offered first, then ports this module handed out before, then any.
        offered = iter([occupied, *sorted(loopback._handed_out)])
        any_port = random.randrange
        monkeypatch.setattr(random, "randrange", lambda low, high: next(offered, None) or any_port(low, high))
        monkeypatch.setattr(loopback, "_handed_out", set(loopback._handed_out) - {occupied})
        assert free_loopback_port() != occupied
