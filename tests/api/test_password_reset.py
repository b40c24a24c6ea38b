"""Password reset through the API on the real PostgreSQL, Redis and a real SMTP server (aiosmtpd):
the same answer for every address, a hashed single-use expiring link in the e-mail, the new password
checked like sign-up's, sign-ins ended, lockout cleared, audit rows, and each refusal."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col, select

from models.auth import PasswordReset
from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Role, Tenant, TenantStatus, User
from tests.auth_support import PASSWORD, Made, audit_actions, auth_db, auth_settings, make_user
from tests.stubs.smtp_stub import SmtpStub
from veles.api import create_api
from veles.config import Settings
from veles.services.password_reset import (
    ANSWER,
    COMPLETED,
    MAX_OPEN_LINKS,
    REQUESTED,
    RESET_IP_LIMIT,
    RESET_LIMIT,
    RESET_MINUTES,
)
from veles.services.tokens import token_hash

__all__ = ["auth_db"]

PORTAL = "https://risk.example.test"
NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"^https://risk\.example\.test/reset\?token=([A-Za-z0-9_\-]+)\r?$", re.MULTILINE)


@pytest.fixture
def settings(auth_db: str, redis_url: str, smtp_server: SmtpStub) -> Settings:
    return auth_settings(auth_db, redis_url, public_url=PORTAL + "/", sign_in_free_failures=3,
                         **smtp_server.settings_fields())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings)) as test_client:
        yield test_client


@pytest.fixture
def user(settings: Settings) -> Made:
    return make_user(settings.database_url, role=Role.RISK_MANAGER)


def _ask(client: TestClient, email: str) -> Any:
    return client.post("/api/v1/auth/password-reset", json={"email": email})


def _confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": password})


def _sign_in(client: TestClient, email: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def _token_from_mail(smtp_server: SmtpStub, count: int = 1) -> str:
    """The token of the newest reset e-mail, once `count` have arrived."""
    message = smtp_server.wait_for(count)[count - 1].message
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)


def _requested_link(client: TestClient, smtp_server: SmtpStub, user: Made, count: int = 1) -> str:
    assert _ask(client, user.email).status_code == 202
    return _token_from_mail(smtp_server, count)


def test_known_address_gets_a_hashed_link_by_mail(client: TestClient, smtp_server: SmtpStub, user: Made,
                                                   settings: Settings) -> None:
    response = _ask(client, f"  {user.email.upper()} ")
    assert response.status_code == 202
    assert response.json() == {"detail": ANSWER}
    token = _token_from_mail(smtp_server)
    mail = smtp_server.messages[0]
    assert mail.rcpt_tos == [user.email]
    assert mail.message["Subject"] == "Reset your Veles password"
    assert f"{RESET_MINUTES} minutes" in str(mail.message.get_body(preferencelist=("plain",)))
    assert len(token) >= 40  # 32 random bytes, URL-safe
    with session_scope(settings.database_url) as session:
        rows = session.exec(select(PasswordReset).where(PasswordReset.user_id == user.user_id)).all()
        assert [row.token_hash for row in rows] == [token_hash(token)]  # the token itself is not stored
        assert timedelta(minutes=RESET_MINUTES - 1) < rows[0].expires_at - utcnow() <= timedelta(
            minutes=RESET_MINUTES)
    assert audit_actions(settings.database_url, user_id=user.user_id) == [REQUESTED]


def test_unknown_inactive_and_suspended_addresses_get_the_same_answer_and_no_mail(
    client: TestClient, smtp_server: SmtpStub, user: Made, settings: Settings
) -> None:
    inactive = make_user(settings.database_url)
    suspended = make_user(settings.database_url)
    with session_scope(settings.database_url) as session:
        session.execute(update(User).where(col(User.id) == inactive.user_id).values(is_active=False))
        session.execute(update(Tenant).where(col(Tenant.id) == suspended.tenant_id)
                        .values(status=TenantStatus.SUSPENDED))
    known = _ask(client, user.email)
    for email in ("nobody@nowhere.test", inactive.email, suspended.email, "not an address"):
        other = _ask(client, email)
        assert (other.status_code, other.json(), other.headers.get("content-length")) == (
            known.status_code, known.json(), known.headers.get("content-length")), email
    smtp_server.wait_for(1)
    time.sleep(0.5)  # the refused addresses' background tasks, had they sent anything
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [[user.email]]
    assert audit_actions(settings.database_url, email="nobody@nowhere.test") == [REQUESTED]


def test_new_password_works_the_old_does_not_and_sign_ins_end(
    client: TestClient, smtp_server: SmtpStub, user: Made, settings: Settings
) -> None:
    signed_in = _sign_in(client, user.email, PASSWORD).json()
    token = _requested_link(client, smtp_server, user)
    done = _confirm(client, token)
    assert done.status_code == 200, done.text
    assert done.json() == {"email": user.email}
    assert _sign_in(client, user.email, PASSWORD).status_code == 401
    assert _sign_in(client, user.email, NEW_PASSWORD).status_code == 200
    ended = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert ended.status_code == 401  # the sign-in from before the reset is over
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {signed_in['access_token']}"})
    assert me.status_code == 401  # its access token too, at once
    assert audit_actions(settings.database_url, user_id=user.user_id) == [
        "auth.sign_in", REQUESTED, COMPLETED, "auth.sign_in_failed", "auth.sign_in"]


# Changed deliberately (issue 13): lockout became the (e-mail, IP) throttle; a reset from the same
# network clears that pair's wait.
def test_reset_lifts_the_throttle(client: TestClient, smtp_server: SmtpStub, user: Made) -> None:
    assert [_sign_in(client, user.email, "wrong").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert _confirm(client, _requested_link(client, smtp_server, user)).status_code == 200
    assert _sign_in(client, user.email, NEW_PASSWORD).status_code == 200


def test_a_link_works_once_and_spends_the_users_other_links(
    client: TestClient, smtp_server: SmtpStub, user: Made
) -> None:
    first = _requested_link(client, smtp_server, user)
    second = _requested_link(client, smtp_server, user, count=2)
    assert _confirm(client, second).status_code == 200
    for token in (second, first):
        again = _confirm(client, token, "yet another passphrase")
        assert again.status_code == 400
        assert "already used" in again.json()["detail"]
    assert _sign_in(client, user.email, NEW_PASSWORD).status_code == 200


def test_an_expired_link_is_refused(client: TestClient, smtp_server: SmtpStub, user: Made,
                                    settings: Settings) -> None:
    token = _requested_link(client, smtp_server, user)
    with session_scope(settings.database_url) as session:
        session.execute(update(PasswordReset).where(col(PasswordReset.token_hash) == token_hash(token))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    response = _confirm(client, token)
    assert response.status_code == 400
    assert "expired" in response.json()["detail"]
    assert _sign_in(client, user.email, PASSWORD).status_code == 200  # nothing changed


def test_an_altered_link_is_refused(client: TestClient, smtp_server: SmtpStub, user: Made) -> None:
    token = _requested_link(client, smtp_server, user)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = _confirm(client, altered)
    assert response.status_code == 400
    assert "not valid" in response.json()["detail"]
    assert _confirm(client, token).status_code == 200  # the real one still works


def test_a_short_password_is_refused_by_field_and_the_link_stays_usable(
    client: TestClient, smtp_server: SmtpStub, user: Made
) -> None:
    token = _requested_link(client, smtp_server, user)
    short = _confirm(client, token, "short1234")
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "password"]
    assert "at least 10" in short.json()["detail"][0]["msg"]
    assert _confirm(client, token).status_code == 200


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/auth/password-reset", {}, "email"),
    ("/api/v1/auth/password-reset", {"email": "x" * 300}, "email"),
    ("/api/v1/auth/password-reset/confirm", {"token": "short", "password": NEW_PASSWORD}, "token"),
    ("/api/v1/auth/password-reset/confirm", {"token": "t" * 43}, "password"),
])
def test_malformed_requests_are_422_naming_the_field(client: TestClient, path: str, body: dict[str, str],
                                                      field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_requests_are_rate_limited_alike_for_known_and_unknown_addresses(
    settings: Settings, smtp_server: SmtpStub, user: Made
) -> None:
    app = create_api(settings)
    for n, email in enumerate((user.email, "nobody@nowhere.test")):
        with TestClient(app, client=(f"10.0.0.{n + 1}", 5000)) as client:
            assert [_ask(client, email).status_code for _ in range(RESET_LIMIT)] == [202] * RESET_LIMIT
            refused = _ask(client, email)
            assert refused.status_code == 429
            assert "Too many password reset attempts" in refused.json()["detail"]
            assert 0 < int(refused.headers["Retry-After"]) <= 60
    with TestClient(app, client=("10.0.0.9", 5000)) as elsewhere:
        assert _ask(elsewhere, user.email).status_code == 429  # per address, whichever IP asks
        assert _ask(elsewhere, "someone@else.test").status_code == 202
    # however often the form was sent, the mailbox got at most MAX_OPEN_LINKS links
    smtp_server.wait_for(MAX_OPEN_LINKS)
    time.sleep(0.5)
    assert len(smtp_server.messages) == MAX_OPEN_LINKS
    with session_scope(settings.database_url) as session:
        links = session.exec(select(PasswordReset).where(PasswordReset.user_id == user.user_id)).all()
        assert len(links) == MAX_OPEN_LINKS


def test_link_uses_are_rate_limited_per_ip(client: TestClient) -> None:
    codes = [_confirm(client, f"guessed-token-{n:04d}").status_code for n in range(RESET_IP_LIMIT + 1)]
    assert codes == [400] * RESET_IP_LIMIT + [429]


def test_with_redis_down_reset_is_a_clear_503(settings: Settings, smtp_server: SmtpStub, user: Made) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_api(down)) as client:
        response = _ask(client, user.email)
        assert response.status_code == 503
        assert "rate-limit store cannot be reached" in response.json()["detail"]
    time.sleep(0.5)
    assert smtp_server.messages == []
