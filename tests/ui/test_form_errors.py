"""A portal form shows every failure under it, never swallows one: the event handlers of the real
Reflex states run here against the real PostgreSQL, with a server misconfigured the way a user
once met it (CREDENTIALS_KEYS unset made "Add connection" raise out of its handler: nothing was
shown) and with the database gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from models.connections import Mt5Connection
from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, User
from tests.models.conftest import reset_schema
from veles.config import get_settings
from veles.services.auth import Identity, issue_token
from veles_ui.state.connections import ConnectionsState
from veles_ui.state.errors import CREDENTIALS_UNUSABLE, DATABASE_DOWN, INTERNAL, shown
from veles_ui.state.users import UsersState

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin_token(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tenant admin's token; the portal's settings read from the environment as in production,
    with no CREDENTIALS_KEYS."""
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Form Errors Ltd", plan=Plan.PROFESSIONAL)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email="admin@forms.test", password_hash="x", role=Role.TENANT_ADMIN)
        session.add(user)
        session.flush()
        assert user.id is not None
        identity = Identity(user_id=user.id, tenant_id=tenant.id, role=Role.TENANT_ADMIN, email=user.email)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("CREDENTIALS_KEYS", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield issue_token(identity, get_settings().secret_key.get_secret_value(), 5)
    get_settings.cache_clear()


def test_add_connection_without_credentials_keys_says_why(pg_url: str, admin_token: str) -> None:
    state = ConnectionsState(_reflex_internal_init=True)
    state.token = admin_token
    asyncio.run(ConnectionsState.add.fn(state, {"server": "sim://alpha", "login": "1001", "password": "pw"}))
    assert state.error == CREDENTIALS_UNUSABLE
    assert "CREDENTIALS_KEYS" in state.error
    assert state.notice == ""
    with session_scope(pg_url) as session:
        assert session.exec(select(Mt5Connection)).all() == []  # nothing half-stored


def test_a_database_that_is_gone_is_said_so(admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    state = UsersState(_reflex_internal_init=True)
    state.token = admin_token

    async def drain() -> None:  # the handler is async (database work off the event loop)
        async for _ in UsersState.invite.fn(state, {"email": "new@forms.test", "role": "viewer"}):
            pass

    asyncio.run(drain())
    assert state.error == DATABASE_DOWN
    assert "127.0.0.1" not in state.error


def test_an_unexpected_failure_is_shown_plainly_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="veles_ui.state.errors"):
        message = shown(RuntimeError("SELECT password_hash FROM user"))
    assert message == INTERNAL
    assert "SELECT" not in message
    assert "SELECT password_hash" in caplog.text


def test_the_report_form_names_a_login_beyond_the_database_range(pg_url: str, admin_token: str) -> None:
    """Login 2^70 was queued and then failed showing raw SQL; now the form refuses it by field."""
    from models.reports import Report
    from veles_ui.state.reports import ReportsState

    state = ReportsState(_reflex_internal_init=True)
    state.token = admin_token
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    asyncio.run(ReportsState.request.fn(state, {
        "type": "account_statement", "format": "pdf", "time_zone": "UTC", "login": str(2**70),
        "start": f"{now - timedelta(hours=6):%Y-%m-%dT%H:%M}", "end": f"{now:%Y-%m-%dT%H:%M}"}))
    assert state.error_field == "login"
    assert str(2**63 - 1) in state.error
    with session_scope(pg_url) as session:
        assert session.exec(select(Report)).all() == []  # nothing queued


def test_public_forms_say_the_database_is_gone(admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign-up and the password-reset request, signed out, as the other forms."""
    from veles_ui.state.reset import ForgotState
    from veles_ui.state.signup import SignupState

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()

    async def drain(events: Any) -> None:
        async for _ in events:
            pass

    signup = SignupState(_reflex_internal_init=True)
    asyncio.run(drain(SignupState.sign_up.fn(signup, {
        "broker": "Gone Db Ltd", "email": "boss@gonedb.test", "password": "a long unguessable phrase 42",
        "plan": "starter"})))
    assert signup.error == DATABASE_DOWN
    forgot = ForgotState(_reflex_internal_init=True)
    asyncio.run(drain(ForgotState.request_link.fn(forgot, {"email": "boss@gonedb.test"})))
    assert forgot.forgot_error == DATABASE_DOWN
