"""The portal's side of invitations, through the real Reflex states' event handlers against the real
PostgreSQL, Redis and SMTP server: the users page answers alike for every address and lists,
resends and revokes; /invite shows the invitation, refuses a weak password by field, makes the user
and says so; its attempts count on the API's counters; and the database, zxcvbn and Argon2 work runs
in worker threads, never on the event loop's thread."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from reflex import constants
from reflex.istate.data import RouterData
from sqlmodel import select

import veles.services.invitations as invitations
import veles_ui.state.users as users_state
from models.db import session_scope
from models.tenancy import Role, User
from tests.auth_support import Made, auth_db, make_user
from tests.stubs.smtp_stub import SmtpStub
from veles.api import create_api
from veles.config import get_settings
from veles.services.auth import Identity, authenticate, issue_token
from veles.services.invitations import ACCEPT_IP_LIMIT, ANSWER
from veles_ui.state.invite import InviteState
from veles_ui.state.session import SessionState
from veles_ui.state.users import UsersState

__all__ = ["auth_db"]

LINK = re.compile(r"/invite\?token=([A-Za-z0-9_\-]+)")
CLIENT_IP = "203.0.113.77"


@pytest.fixture
def portal(auth_db: str, redis_url: str, smtp_server: SmtpStub,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The portal's settings from the environment, as in production."""
    smtp = {k.upper(): str(v) for k, v in smtp_server.settings_fields().items() if v is not None}
    for name, value in {"DATABASE_URL": auth_db, "REDIS_URL": redis_url, **smtp}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _tab(state: type[SessionState], url: str = "/users") -> Any:
    tab = state(_reflex_internal_init=True)
    tab.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: CLIENT_IP,
                                              constants.RouteVar.PATH: url.split("?")[0], "asPath": url})
    return tab


def _admin_tab(admin: Made) -> Any:
    tab = _tab(UsersState)
    identity = Identity(user_id=admin.user_id, tenant_id=admin.tenant_id, role=Role.TENANT_ADMIN,
                        email=admin.email)
    tab.token = issue_token(identity, get_settings().secret_key.get_secret_value(), 5)
    return tab


def _run(events: Any) -> None:
    async def drain() -> None:
        if isinstance(events, AsyncIterator):
            async for _ in events:
                pass
        else:
            await events

    asyncio.run(drain())


def _threads_of(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[threading.Thread]:
    """Record the thread each call of `module.name` runs in; the real function still does the work."""
    real: Callable[..., Any] = getattr(module, name)
    seen: list[threading.Thread] = []

    def recorded(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return seen


def test_the_users_page_answers_alike_then_lists_resends_and_revokes(
        portal: None, auth_db: str, smtp_server: SmtpStub, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = make_user(auth_db, role=Role.TENANT_ADMIN)
    member = make_user(auth_db, tenant_id=admin.tenant_id)
    stranger = make_user(auth_db)
    invited_in = _threads_of(monkeypatch, users_state, "invite")
    notices = []
    for address in ("fresh@portal.test", member.email, stranger.email):
        tab = _admin_tab(admin)
        _run(UsersState.invite.fn(tab, {"email": address, "role": "viewer"}))
        assert tab.error == ""
        notices.append((tab.notice, sorted(row["email"] for row in tab.users)))
    assert notices == [(ANSWER, sorted([admin.email, member.email]))] * 3
    assert invited_in
    assert threading.main_thread() not in invited_in
    assert sorted(row["email"] for row in tab.invitations) == sorted(
        ["fresh@portal.test", member.email, stranger.email])
    smtp_server.wait_for(3)

    fresh = next(row for row in tab.invitations if row["email"] == "fresh@portal.test")
    _run(UsersState.resend.fn(tab, fresh["id"]))
    assert (tab.error, "sent again" in tab.notice) == ("", True)
    mails = smtp_server.wait_for(4)
    assert mails[3].rcpt_tos == ["fresh@portal.test"]
    _run(UsersState.revoke.fn(tab, fresh["id"]))
    assert (tab.error, "revoked" in tab.notice) == ("", True)
    assert "fresh@portal.test" not in [row["email"] for row in tab.invitations]
    _run(UsersState.revoke.fn(tab, "1; DROP TABLE"))  # a crafted event
    assert "not an id" in tab.error


def test_the_invite_page_makes_the_user_with_the_password_as_typed(
        portal: None, auth_db: str, smtp_server: SmtpStub, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = make_user(auth_db, role=Role.TENANT_ADMIN)
    _run(UsersState.invite.fn(_admin_tab(admin), {"email": "joiner@portal.test", "role": "risk_manager"}))
    body = smtp_server.wait_for(1)[0].message.get_body(preferencelist=("plain",))
    assert body is not None
    token = LINK.search(body.get_content())
    assert token is not None

    page = _tab(InviteState, f"/invite?token={token.group(1)}")
    _run(InviteState.open_invite.fn(page))
    assert (page.invite_link_error, page.invite_email, page.invite_role) == ("", "joiner@portal.test",
                                                                             "risk manager")
    _run(InviteState.join.fn(page, {"password": "password123", "confirm": "password123"}))
    assert (page.invite_error_field, page.invite_done) == ("password", False)
    assert "too easy to guess" in page.invite_error
    hashed_in = _threads_of(monkeypatch, invitations, "hash_password")
    chosen = " tidal lanterns drift north "
    _run(InviteState.join.fn(page, {"password": chosen, "confirm": chosen}))
    assert (page.invite_error, page.invite_done) == ("", True)
    assert hashed_in
    assert threading.main_thread() not in hashed_in
    with session_scope(auth_db) as session:
        identity = authenticate(session, "joiner@portal.test", chosen)
        assert (identity.tenant_id, identity.role) == (admin.tenant_id, Role.RISK_MANAGER)
        assert session.exec(select(User).where(User.email == "joiner@portal.test")).one().is_active
    notice = smtp_server.wait_for(2)[1]
    assert notice.rcpt_tos == [admin.email]

    again = _tab(InviteState, f"/invite?token={token.group(1)}")
    _run(InviteState.open_invite.fn(again))
    assert "already accepted" in again.invite_link_error
    missing = _tab(InviteState, "/invite")
    _run(InviteState.open_invite.fn(missing))
    assert "not valid" in missing.invite_link_error


def test_the_invite_page_counts_on_the_apis_counters(portal: None) -> None:
    """Attempts from one IP through the API and then the portal share one limit."""
    api = TestClient(create_api(get_settings()), client=(CLIENT_IP, 50000))
    with api:
        codes = [api.post("/api/v1/invitations/accept",
                          json={"token": f"guessed-token-{n:04d}", "password": "x"}).status_code
                 for n in range(ACCEPT_IP_LIMIT)]
    assert codes == [400] * ACCEPT_IP_LIMIT
    page = _tab(InviteState, "/invite?token=guessed-token-final")
    _run(InviteState.join.fn(page, {"password": "tidal lanterns drift", "confirm": "tidal lanterns drift"}))
    assert page.invite_error_field == "password"
    assert "Too many" in page.invite_error
