"""Chosen ports stay out of the range the kernel gives outgoing connections."""

from __future__ import annotations

import socket

from conveyor.stack.process import LOWEST_CHOSEN_PORT, ephemeral_port_range, free_port


def test_free_ports_lie_outside_the_ephemeral_range_and_can_be_bound() -> None:
    low, high = ephemeral_port_range()
    ports = {free_port() for _ in range(50)}
    assert len(ports) > 1
    for port in ports:
        assert port >= LOWEST_CHOSEN_PORT and not low <= port <= high, port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
