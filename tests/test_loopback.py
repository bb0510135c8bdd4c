"""Ports for throw-away listeners: below the ephemeral range (where outgoing connections take their source
ports), free when handed out, and never the same twice."""

from __future__ import annotations

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
        for candidate in range(first_ephemeral - 1, LOWEST, -1):
            try:
                taken.bind(("127.0.0.1", candidate))
                break
            except OSError:
                continue
        taken.listen()
        occupied = int(taken.getsockname()[1])
        choices = iter([occupied, occupied - 1, occupied - 2, occupied - 3])
        monkeypatch.setattr(loopback.random, "randrange", lambda _low, _high: next(choices))
        assert free_loopback_port() in {occupied - 1, occupied - 2, occupied - 3}
