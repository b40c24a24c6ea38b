"""An open dashboard outlives no session: against the shared demo, a dashboard session (a socket.io
client speaking the portal's protocol, as `veles bench ui --clients socket` does) is receiving
live figures when its user is deactivated through the API; within 2 s the portal sends it to
/login and its stream stops."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from models.tenancy import Role
from veles.bench.dashboard_sockets import open_clients, sign_in

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]

EMAIL, PASSWORD = "ends-soon@demo.test", "a long enough passphrase 1"
ADMIN = "ends-them@demo.test"


def _call(url: str, method: str, path: str, token: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 (the demo's own URL)
        f"{url}{path}", method=method, data=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.load(response)


def test_deactivation_stops_the_stream_and_sends_the_tab_to_sign_in(demo: Demo) -> None:
    url = demo.wait_until_up()[0]
    demo.add_users((EMAIL, PASSWORD, Role.RISK_MANAGER), (ADMIN, PASSWORD, Role.TENANT_ADMIN))
    admin_token, _ = sign_in(url, ADMIN, PASSWORD)
    access, refresh = sign_in(url, EMAIL, PASSWORD)
    me = _call(url, "GET", "/api/v1/me", access)

    async def scenario() -> tuple[float, list[list[float]], float]:
        (client,) = await open_clients(url, access, refresh, sessions=1, first_update_timeout=120)
        try:
            await asyncio.sleep(1.0)  # live: more updates arrive
            assert len(client.samples) >= 2, client.samples
            await asyncio.to_thread(_call, url, "POST", f"/api/v1/users/{me['user_id']}/deactivate",
                                    admin_token)
            deactivated = time.monotonic()
            # the client only records redirects in a list, so look at it often
            while "/login" not in client.redirects and time.monotonic() - deactivated < 10:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            redirected = time.monotonic() - deactivated
            count = len(client.samples)
            await asyncio.sleep(2.0)  # the simulator sends a batch every 250 ms
            return redirected, client.samples[count:], count
        finally:
            await client.close()

    redirected, after, _count = asyncio.run(scenario())
    assert redirected < 2.0, f"sent to /login after {redirected:.2f} s"
    assert after == [], f"{len(after)} updates after the session ended"
