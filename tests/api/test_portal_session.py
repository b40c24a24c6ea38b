"""The portal's refresh token lives only in an HttpOnly cookie (`veles.api.portal_session`): the
hand-over spends what the sign-in page passed, renewal and sign-out work from the cookie alone, the
cookies carry HttpOnly / SameSite / Secure as promised, and no portal state holds a refresh token
(Reflex keeps tab state in Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import reflex as rx
from fastapi.testclient import TestClient

from tests.auth_support import auth_db, auth_settings, client, make_user, settings, sign_in
from veles.api import create_api
from veles.api.portal_session import PATH, REFRESH_COOKIE, TOKEN_COOKIE
from veles.config import Settings, get_settings

__all__ = ["auth_db", "client", "settings"]


def cookies_set(response: Any) -> dict[str, dict[str, str]]:
    """Each Set-Cookie of a response: name -> its attributes (lower-case keys; 'value' too)."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        found[name] = {"value": value.strip('"')} | {
            key.lower(): val for key, _, val in (a.partition("=") for a in attributes)
        }
    return found


def test_the_hand_over_spends_the_token_and_keeps_its_successor_http_only(
    client: TestClient, settings: Settings
) -> None:
    pair = sign_in(client, make_user(settings.database_url))
    kept = client.post(f"{PATH}/session", json={"refresh_token": pair["refresh_token"]})
    assert kept.status_code == 204, kept.text

    cookies = cookies_set(kept)
    refresh_cookie, token_cookie = cookies[REFRESH_COOKIE], cookies[TOKEN_COOKIE]
    assert "httponly" in refresh_cookie
    assert refresh_cookie["path"] == PATH  # never sent to the portal's socket or pages
    assert refresh_cookie["samesite"].lower() == "strict"
    assert "secure" not in refresh_cookie  # plain http here (see the https test)
    assert refresh_cookie["value"] not in (pair["refresh_token"], "")
    assert "httponly" not in token_cookie  # the portal's state reads it (Reflex runs in the page)
    assert token_cookie["path"] == "/"
    assert token_cookie["samesite"].lower() == "strict"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token_cookie['value']}"})
    assert me.status_code == 200

    # what passed through the page's script is spent: replaying it ends the whole sign-in
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    assert client.post(f"{PATH}/refresh").status_code == 401


def test_renewal_and_sign_out_work_from_the_cookie_alone(client: TestClient, settings: Settings) -> None:
    pair = sign_in(client, make_user(settings.database_url))
    assert client.post(f"{PATH}/session", json={"refresh_token": pair["refresh_token"]}).status_code == 204

    renewed = client.post(f"{PATH}/refresh")  # no body: the client sends the HttpOnly cookie
    assert renewed.status_code == 204, renewed.text
    access = cookies_set(renewed)[TOKEN_COOKIE]["value"]
    # the cookie goes when the token inside expires (it outlived it by 11.5 h)
    assert cookies_set(renewed)[TOKEN_COOKIE]["max-age"] == str(settings.access_token_minutes * 60)
    bearer = {"Authorization": f"Bearer {access}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200

    out = client.post(f"{PATH}/logout")
    assert out.status_code == 204
    gone = cookies_set(out)
    assert gone[REFRESH_COOKIE]["value"] == ""
    assert gone[REFRESH_COOKIE]["max-age"] == "0"
    assert gone[TOKEN_COOKIE]["value"] == ""
    assert client.get("/api/v1/me", headers=bearer).status_code == 401  # ended at once
    assert client.post(f"{PATH}/refresh").status_code == 401
    assert client.post(f"{PATH}/logout").status_code == 204  # signing out twice is fine


def test_without_a_sign_in_renewal_is_refused_and_clears_the_cookie(client: TestClient) -> None:
    refused = client.post(f"{PATH}/refresh")
    assert refused.status_code == 401
    assert cookies_set(refused)[REFRESH_COOKIE]["max-age"] == "0"
    forged = client.post(f"{PATH}/session", json={"refresh_token": "x" * 40})
    assert forged.status_code == 401
    assert client.post(f"{PATH}/session", json={"refresh_token": "short"}).status_code == 422


def test_cookies_are_secure_when_the_portal_is_served_over_tls(auth_db: str, redis_url: str) -> None:
    settings = auth_settings(auth_db, redis_url, public_url="https://risk.broker.example")
    with TestClient(create_api(settings)) as client:
        pair = sign_in(client, make_user(auth_db))
        kept = client.post(f"{PATH}/session", json={"refresh_token": pair["refresh_token"]})
        assert kept.status_code == 204
        cookies = cookies_set(kept)
        assert "secure" in cookies[REFRESH_COOKIE]
        assert "secure" in cookies[TOKEN_COOKIE]


def _all_states(state: type[rx.State]) -> Iterator[type[rx.State]]:
    yield state
    for child in state.get_substates():
        yield from _all_states(child)


def test_no_portal_state_holds_a_refresh_token() -> None:
    """Reflex stores every state var of every tab (cookies included) in Redis: none may be a
    refresh token, and the one cookie var left is the access token."""
    import veles_ui.veles_ui  # noqa: F401 (registers every page's state)
    from veles_ui.state.session import SessionState

    names = {f"{state.get_full_name()}.{name}" for state in _all_states(SessionState)
             for name in state.get_fields()}
    assert names
    assert [name for name in names if "refresh" in name.lower()] == []
    cookie = SessionState.get_fields()["token"].default
    assert isinstance(cookie, rx.Cookie)
    assert cookie.name == TOKEN_COOKIE


def test_the_access_token_cookie_lives_as_long_as_the_token() -> None:
    """It outlived its token by 11.5 h (max-age 12 h, token 30 min): a dead bearer token sat in the
    browser. Now the cookie goes when the token expires and the page guard renews from the
    HttpOnly refresh cookie (no token counts as renewable)."""
    from veles_ui.state.session import SessionState

    cookie = SessionState.get_fields()["token"].default
    assert isinstance(cookie, rx.Cookie)
    assert cookie.max_age == get_settings().access_token_minutes * 60
