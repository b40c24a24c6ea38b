"""`veles bench ui --clients socket` opens sessions without failing the run on the first socket
that does not connect: each connect is retried (bounded), and the sessions that never stream are
counted by kind and reported apart from the latency of those that do. Against a port nothing
listens on (a real refused TCP connect), without a demo; the happy path runs against the shared
demo in tests/browser/test_dashboard_sockets.py."""

from __future__ import annotations

import asyncio
import socket

import pytest

from veles.bench import dashboard_sockets, ui


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_refused_sessions_are_counted_after_bounded_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_sockets, "CONNECT_ATTEMPTS", 2)
    url = f"http://127.0.0.1:{_closed_port()}"

    opening = asyncio.run(dashboard_sockets.open_sessions(url, "access", "refresh", sessions=3,
                                                          first_update_timeout=5, concurrency=2))

    assert opening.clients == []
    assert opening.failed == 3
    (kind,) = opening.failures  # one kind of failure: the connect, after its retries
    assert kind.startswith("connect: ConnectionError"), opening.failures
    assert opening.retries == 3  # one retry per session (2 attempts each), then counted


def test_the_strict_opener_still_raises_with_the_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_sockets, "CONNECT_ATTEMPTS", 1)
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(RuntimeError, match=r"1 of 1 sessions failed: .*connect: ConnectionError"):
        asyncio.run(dashboard_sockets.open_clients(url, "access", "refresh", sessions=1,
                                                   first_update_timeout=5))


def test_report_shows_failures_and_workers_apart_from_latency() -> None:
    result = {
        "sessions": 2, "clients": "socket", "updates_per_session_s": 4.0,
        "gateway_to_client_p50_ms": 20.0, "gateway_to_client_p99_ms": 40.0,
        "publish_to_client_p50_ms": 10.0, "publish_to_client_p99_ms": 30.0,
        "portal_cpu_pct_of_core": 5.0, "client_cpu_pct_of_core": 1.0,
        "portal_cpu_ms_per_session_update": 0.2, "load_average_1m": [1.0, 1.1],
        "sessions_asked": 3, "failed": 1, "failures": {"no first update within 120 s": 1},
        "client_loop_lag_p99_ms": 3.0, "workers": [{"pid": 42, "sockets": 2, "cpu_pct_of_core": 5.0}],
    }
    text = ui.report([result])
    assert "2 (3, 1)" in text
    assert "failed: 1 x no first update within 120 s" in text
    assert "worker pid 42: 2 sockets, 5.0% of a core" in text
