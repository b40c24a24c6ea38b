"""The socket.io dashboard clients `veles bench ui --clients socket` times the portal with, against
the shared demo: they must see what a tab sees (live book stamps), and a refused token must end
in the portal's redirect to the sign-in page, not in figures."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import jwt
import pytest

from veles.bench.dashboard_sockets import open_clients, sign_in

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]


def test_socket_clients_receive_the_live_dashboard(demo: Demo) -> None:
    url, email, password = demo.wait_until_up()
    tokens = sign_in(url, email, password)

    async def watch() -> list[list[list[float]]]:
        clients = await open_clients(url, *tokens, sessions=2, first_update_timeout=120)
        try:
            await asyncio.sleep(3)  # the simulator sends a batch every 250 ms
            return [list(client.samples) for client in clients]
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    for samples in asyncio.run(watch()):
        assert len(samples) >= 2, samples  # the first update and at least one more
        for gateway_ms, published_ms, received_ms in samples:
            # An update is published after its batch left the gateway and reaches the client after both.
            assert 0 <= published_ms <= gateway_ms < 60_000, (gateway_ms, published_ms)
            assert abs(received_ms - time.time() * 1000) < 60_000, received_ms


def test_socket_client_with_a_tampered_token_is_sent_to_sign_in(demo: Demo) -> None:
    url, email, password = demo.wait_until_up()
    access, _refresh = sign_in(url, email, password)
    claims = jwt.decode(access, options={"verify_signature": False})
    not_the_key = "k" * 32  # long enough for HS256, so the only fault is the signature
    forged = jwt.encode({**claims, "tenant_id": claims["tenant_id"] + 1}, not_the_key, algorithm="HS256")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="/login"):
        asyncio.run(open_clients(url, forged, "not-a-refresh-token", sessions=1, first_update_timeout=60))
    assert time.monotonic() - started < 60  # refused at once, not timed out
