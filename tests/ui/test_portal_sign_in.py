"""The portal's sign-in events against the real PostgreSQL and Redis: the same rate limit as the
API's `/auth/token` (the same counters), the throttle, the temporary-password step, and the phone
change that needs the password; driven on the Reflex state classes themselves with the client IP a
socket would carry."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from reflex import constants
from reflex.istate.data import RouterData

from models.db import session_scope
from models.tenancy import Role, TwoFactor, User
from tests.auth_support import PASSWORD, Made, auth_db, make_user
from veles.api import create_api
from veles.config import Settings, get_settings
from veles.services.ratelimit import shared_login_limiter
from veles_ui.state.notifications import NotificationsState
from veles_ui.state.session import SessionState

__all__ = ["auth_db"]
IP = "203.0.113.7"


@pytest.fixture
def portal(auth_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The portal process's settings: the test database and Redis (emptied for each test)."""
    monkeypatch.setenv("DATABASE_URL", auth_db)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SIGN_IN_FREE_FAILURES", "3")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _tab(ip: str = IP) -> SessionState:
    """A browser tab's session state, as a socket connected from `ip` would have it."""
    state = SessionState(_reflex_internal_init=True)
    state.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: ip})
    return state


async def _login(state: SessionState, email: str, password: str, **extra: str) -> bool:
    """Send the sign-in form; True when it led to the dashboard."""
    redirect = await SessionState.login.fn(state, {"email": email, "password": password, **extra})
    return redirect is not None


def test_the_sign_in_events_do_not_block_the_event_loop() -> None:
    assert inspect.iscoroutinefunction(SessionState.login.fn)
    assert inspect.iscoroutinefunction(SessionState.verify.fn)


async def test_the_eleventh_portal_sign_in_in_a_minute_is_refused_with_the_wait(portal: Settings) -> None:
    user = make_user(portal.database_url)
    for _ in range(10):  # right passwords: only the rate limit can refuse these
        assert await _login(_tab(), user.email, PASSWORD)
    refused = _tab()
    assert not await _login(refused, user.email, PASSWORD)
    assert "Too many sign-in attempts; try again in" in refused.login_error
    assert refused.token == ""


async def test_the_portal_and_the_api_count_on_the_same_counters(portal: Settings) -> None:
    user = make_user(portal.database_url)
    for _ in range(10):
        assert await _login(_tab(), user.email, PASSWORD)
    app = create_api(portal, limiter=shared_login_limiter(portal))
    with TestClient(app, client=("198.51.100.1", 5000)) as api:  # another IP: the e-mail's counter
        response = api.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_wrong_passwords_make_the_pair_wait_and_say_so(portal: Settings) -> None:
    user = make_user(portal.database_url)
    for _ in range(3):
        tab = _tab()
        assert not await _login(tab, user.email, "not the password")
        assert tab.login_error == "Wrong email or password."
    waiting = _tab()
    assert not await _login(waiting, user.email, PASSWORD)
    assert "try again in 1 s" in waiting.login_error
    assert await _login(_tab("192.0.2.50"), user.email, PASSWORD)  # the user elsewhere is not slowed


async def test_a_temporary_password_is_replaced_at_the_first_sign_in(portal: Settings) -> None:
    user: Made = make_user(portal.database_url, temporary=True)
    tab = _tab()
    assert not await _login(tab, user.email, PASSWORD)
    assert tab.password_change
    assert "temporary" in tab.login_error
    assert not await _login(tab, user.email, PASSWORD, new_password="password123")
    assert "too easy to guess" in tab.login_error
    assert await _login(tab, user.email, PASSWORD, new_password="quiet lagoon at dawn")
    assert not tab.password_change
    assert await _login(_tab(), user.email, "quiet lagoon at dawn")


async def test_the_portal_changes_the_phone_only_with_the_current_password(portal: Settings) -> None:
    user = make_user(portal.database_url, role=Role.VIEWER)
    tab = NotificationsState(_reflex_internal_init=True)
    tab.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: IP})
    assert await _login(tab, user.email, PASSWORD)
    await NotificationsState.load.fn(tab)
    assert (tab.phone, tab.sms_sign_in, tab.error) == ("", False, "")
    thief = {"phone": "+4915199999999", "sms_sign_in": "on", "current_password": "a guess"}
    await NotificationsState.save_phone.fn(tab, thief)
    assert (tab.error_field, tab.error) == ("current_password", "This is not your current password.")
    with session_scope(portal.database_url) as session:
        stored = session.get(User, user.user_id)
        assert stored is not None
        assert (stored.phone, stored.two_factor) == (None, TwoFactor.NONE)
    await NotificationsState.save_phone.fn(tab, {**thief, "current_password": PASSWORD})
    assert (tab.error_field, tab.error) == ("", "")
    assert (tab.phone, tab.sms_sign_in) == ("+4915199999999", True)
    with session_scope(portal.database_url) as session:
        stored = session.get(User, user.user_id)
        assert stored is not None
        assert (stored.phone, stored.two_factor) == ("+4915199999999", TwoFactor.SMS)


def _behind_proxy(client: str, proxy: str = "10.0.0.5") -> SessionState:
    """A tab whose socket came through `proxy`, which says it forwarded `client`."""
    state = SessionState(_reflex_internal_init=True)
    state.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: proxy,
                                                constants.RouteVar.HEADERS: {"x-forwarded-for": client}})
    return state


async def test_behind_a_trusted_proxy_limits_key_on_the_client(portal: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """As the API does (TRUSTED_PROXIES): one client's failures behind the proxy do not slow another
    client behind the same proxy; the proxy's address alone would have made them one."""
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    get_settings.cache_clear()
    user = make_user(portal.database_url)
    assert _behind_proxy("198.51.100.20")._client_ip() == "198.51.100.20"
    for _ in range(3):
        assert not await _login(_behind_proxy("198.51.100.20"), user.email, "not the password")
    waiting = _behind_proxy("198.51.100.20")
    assert not await _login(waiting, user.email, PASSWORD)
    assert "try again in" in waiting.login_error
    assert await _login(_behind_proxy("198.51.100.21"), user.email, PASSWORD)


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(portal: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    get_settings.cache_clear()
    assert _behind_proxy("192.0.2.50", proxy=IP)._client_ip() == IP  # a client naming itself
    assert _behind_proxy("192.0.2.50, 10.0.0.9")._client_ip() == "192.0.2.50"  # two trusted hops
    monkeypatch.delenv("TRUSTED_PROXIES")
    get_settings.cache_clear()
    assert _behind_proxy("192.0.2.50")._client_ip() == "10.0.0.5"  # none configured: the peer
