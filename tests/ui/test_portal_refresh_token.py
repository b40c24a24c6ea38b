"""No refresh token in the portal's per-tab state (Reflex keeps it in Redis; issue 13 found 29
valid ones there): a sign-in through the portal's event leaves only the access token in the
state as Reflex serialises it, and the refresh token goes, once, to the hand-over route, which
spends it and keeps its successor in the HttpOnly cookie. Driven on the Reflex state class with
the real PostgreSQL and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from reflex import constants
from reflex.istate.data import RouterData

from tests.auth_support import PASSWORD, auth_db, make_user
from veles.api import create_api
from veles.api.portal_session import PATH, REFRESH_COOKIE
from veles.config import Settings, get_settings
from veles_ui.state.session import SessionState

__all__ = ["auth_db"]


@pytest.fixture
def portal(auth_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The portal process's settings: the test database and Redis."""
    monkeypatch.setenv("DATABASE_URL", auth_db)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


async def test_a_portal_sign_in_keeps_no_refresh_token_in_the_tab_state(portal: Settings) -> None:
    user = make_user(portal.database_url)
    tab = SessionState(_reflex_internal_init=True)
    tab.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: "203.0.113.9"})

    handover = await SessionState.login.fn(tab, {"email": user.email, "password": PASSWORD})
    assert handover is not None
    script = str(handover.args[0][1])  # rx.call_script's javascript_code
    found = re.search(r"refresh_token[^e]*(eyJ[\w-]+\.[\w-]+\.[\w-]+)", script)  # a JWT
    assert found is not None, script
    refresh_token = found.group(1)

    stored = tab._serialize()  # what Reflex writes to Redis for this tab
    assert tab.token
    assert tab.token.encode() in stored  # the access token is there (minutes)...
    assert refresh_token.encode() not in stored  # ...the refresh token (days) is not
    assert b"refresh" not in stored.lower()

    with TestClient(create_api(portal)) as api:
        kept = api.post(f"{PATH}/session", content=json.dumps({"refresh_token": refresh_token}),
                        headers={"Content-Type": "application/json"})
        assert kept.status_code == 204, kept.text
        assert api.cookies.get(REFRESH_COOKIE) not in (None, "", refresh_token)
        assert api.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token}).status_code == 401
