"""The port picker of the bench and the tests (bench/ports.py): free, and below the kernel's
ephemeral range, where no outgoing connection can take it before the service binds it."""

from __future__ import annotations

import socket

import pytest

from bench import ports


def test_a_picked_port_is_free_and_below_the_ephemeral_range() -> None:
    start = ports._ephemeral_start()
    for _ in range(20):
        port = ports.free_port()
        assert ports.LOWEST <= port < start
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: binding it works


def test_a_port_in_use_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        held.listen()
        picks = iter([taken, taken, taken + 1 if taken < 65535 else taken - 1])
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(picks))
        monkeypatch.setattr(ports, "_ephemeral_start", lambda: 65535)
        assert ports.free_port() != taken


def test_without_room_below_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: ports.LOWEST)
    port = ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_port_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Picks made before any is bound never meet: the second pick of the same number is
    refused, though nothing is bound to it yet."""
    monkeypatch.setattr(ports, "_given", set())
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: 65535)
    first = ports.free_port()
    picks = iter([first, first, first + 1 if first < 65534 else first - 1])
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(picks))
    assert ports.free_port() != first


def test_each_xdist_worker_picks_from_a_slice_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    slices = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(ports._slice(20000, 32767))
    (low0, high0), (low1, high1) = slices
    assert low0 == 20000 and high0 < low1 and high1 <= 32767
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: 32768)
    assert all(low1 <= ports.free_port() <= high1 for _ in range(20))
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert ports._slice(20000, 32767) == (20000, 32767)
