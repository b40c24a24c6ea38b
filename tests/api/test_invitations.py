"""Invitations through the API on the real PostgreSQL, Redis and a real SMTP server (aiosmtpd): the
same answer for every address (unknown, already this tenant's, another broker's), the e-mail that
tells only the address which case it is, the pending list per tenant, resend and revoke, and the
link: accept (password exactly as typed), expired, revoked, reused, rate-limited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col, select

from models.columns import utcnow
from models.db import session_scope, tenant_session
from models.invitations import Invitation
from models.tenancy import Role, User
from tests.auth_support import (
    Made,
    admin,
    audit_actions,
    auth_db,
    auth_settings,
    bearer,
    client,
    identity_of,
    make_user,
)
from tests.stubs.smtp_stub import ReceivedMail, SmtpStub
from veles.config import Settings
from veles.services.invitations import (
    ACCEPT_IP_LIMIT,
    ACCEPTED,
    ANSWER,
    INVITED,
    RESENT,
    REVOKED,
    TAKEN,
    invite,
)

__all__ = ["admin", "auth_db", "client"]

PORTAL = "https://risk.example.test"
CHOSEN = "  a lantern over the quiet harbour "  # kept exactly as typed, blanks and all
LINK = re.compile(r"^https://risk\.example\.test/invite\?token=([A-Za-z0-9_\-]+)\r?$", re.MULTILINE)


@pytest.fixture
def settings(auth_db: str, redis_url: str, smtp_server: SmtpStub) -> Settings:
    return auth_settings(auth_db, redis_url, public_url=PORTAL, **smtp_server.settings_fields())


def _text(mail: ReceivedMail) -> str:
    body = mail.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _mail_to(smtp_server: SmtpStub, address: str, count: int) -> list[str]:
    """The texts of the mails to `address`, once `count` mails in all have arrived."""
    return [_text(mail) for mail in smtp_server.wait_for(count) if mail.rcpt_tos == [address]]


def _token(text: str) -> str:
    found = LINK.search(text)
    assert found, text
    return found.group(1)


def _invite(client: TestClient, headers: dict[str, str], email: str, role: str = "viewer") -> Any:
    return client.post("/api/v1/users", json={"email": email, "role": role}, headers=headers)


def _accept(client: TestClient, token: str, password: str = CHOSEN) -> Any:
    return client.post("/api/v1/invitations/accept", json={"token": token, "password": password})


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """The answer with what differs by nature (the address typed, the row's id and clock) left out."""
    invitation = {k: v for k, v in body["invitation"].items()
                  if k not in {"id", "email", "created_at", "sent_at", "expires_at"}}
    return {"keys": sorted(body), "invitation_keys": sorted(body["invitation"]), "detail": body["detail"],
            "invitation": invitation}


def test_every_address_gets_the_same_answer_and_only_the_mail_tells(
        client: TestClient, settings: Settings, admin: Made, smtp_server: SmtpStub) -> None:
    headers = bearer(settings, admin)
    member = make_user(settings.database_url, tenant_id=admin.tenant_id)
    stranger = make_user(settings.database_url)  # another broker's user
    addresses = ["fresh@new.test", member.email, stranger.email]
    answers = [_invite(client, headers, address) for address in addresses]
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    shapes = [_shape(answer.json()) for answer in answers]
    assert shapes == [shapes[0]] * 3
    assert shapes[0]["detail"] == ANSWER
    assert shapes[0]["invitation"] == {"role": "viewer", "status": "pending", "invited_by": admin.email}

    pending = client.get("/api/v1/invitations", headers=headers).json()
    assert sorted(row["email"] for row in pending) == sorted(addresses)
    assert {row["status"] for row in pending} == {"pending"}
    users = client.get("/api/v1/users", headers=headers).json()
    assert sorted(user["email"] for user in users) == sorted([admin.email, member.email])  # nobody made yet

    fresh = _mail_to(smtp_server, "fresh@new.test", 3)
    here = _mail_to(smtp_server, member.email, 3)
    elsewhere = _mail_to(smtp_server, stranger.email, 3)
    assert len(fresh) == len(here) == len(elsewhere) == 1
    assert _token(fresh[0])
    assert "already has an account there" in here[0]
    assert f"{PORTAL}/login" in here[0]
    assert "another broker" in elsewhere[0]
    assert "one broker only" in elsewhere[0]
    assert not LINK.search(here[0])
    assert not LINK.search(elsewhere[0])
    with session_scope(settings.database_url) as session:
        assert [row.token_hash for row in session.exec(select(Invitation))]
        assert not any(
            _token(fresh[0]) in row.token_hash for row in session.exec(select(Invitation)))
    assert audit_actions(settings.database_url, user_id=admin.user_id) == [INVITED] * 3


def test_accepting_makes_the_user_with_the_password_as_typed_once(
        client: TestClient, settings: Settings, admin: Made, smtp_server: SmtpStub) -> None:
    headers = bearer(settings, admin)
    assert _invite(client, headers, "Risk@New.test", "risk_manager").status_code == 201
    token = _token(_mail_to(smtp_server, "risk@new.test", 1)[0])

    weak = _accept(client, token, "password123")
    assert weak.status_code == 422
    assert ["body", "password"] in [error["loc"] for error in weak.json()["detail"]]
    built_on_address = _accept(client, token, "risk@new.test")
    assert built_on_address.status_code == 422
    done = _accept(client, token)
    assert done.status_code == 200, done.text
    assert done.json() == {"email": "risk@new.test"}

    exact = client.post("/api/v1/auth/token", json={"email": "risk@new.test", "password": CHOSEN})
    assert exact.status_code == 200, exact.text
    stripped = client.post("/api/v1/auth/token", json={"email": "risk@new.test", "password": CHOSEN.strip()})
    assert stripped.status_code == 401
    users = {user["email"]: user for user in client.get("/api/v1/users", headers=headers).json()}
    assert users["risk@new.test"]["role"] == "risk_manager"
    assert client.get("/api/v1/invitations", headers=headers).json() == []
    with session_scope(settings.database_url) as session:
        made = session.exec(select(User).where(User.email == "risk@new.test")).one()
        assert (made.tenant_id, made.must_change_password) == (admin.tenant_id, False)
        assert made.email_verified_at is not None  # the link proved the address
        made_id = made.id

    again = _accept(client, token)
    assert again.status_code == 400
    assert "already accepted" in again.json()["detail"]
    notice = _mail_to(smtp_server, admin.email, 2)
    assert len(notice) == 1
    assert "risk@new.test accepted the invitation" in notice[0]
    assert audit_actions(settings.database_url, user_id=admin.user_id) == [INVITED]
    assert audit_actions(settings.database_url, user_id=made_id) == [ACCEPTED, "auth.sign_in",
                                                                     "auth.sign_in_failed"]


def test_an_expired_link_is_refused_and_a_resend_replaces_it(
        client: TestClient, settings: Settings, admin: Made, smtp_server: SmtpStub) -> None:
    headers = bearer(settings, admin)
    invitation_id = _invite(client, headers, "late@new.test").json()["invitation"]["id"]
    old = _token(_mail_to(smtp_server, "late@new.test", 1)[0])
    with session_scope(settings.database_url) as session:
        session.execute(update(Invitation).where(col(Invitation.id) == invitation_id)
                        .values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = _accept(client, old)
    assert (expired.status_code, "expired" in expired.json()["detail"]) == (400, True)
    assert [row["status"] for row in client.get("/api/v1/invitations", headers=headers).json()] == ["expired"]

    resent = client.post(f"/api/v1/invitations/{invitation_id}/resend", headers=headers)
    assert (resent.status_code, resent.json()["status"]) == (200, "pending")
    new = _token(_mail_to(smtp_server, "late@new.test", 2)[1])
    assert new != old
    assert _accept(client, old).status_code == 400  # the older link no longer works at all
    assert _accept(client, new).status_code == 200
    assert audit_actions(settings.database_url, user_id=admin.user_id) == [INVITED, RESENT]


def test_a_revoked_link_is_refused(client: TestClient, settings: Settings, admin: Made,
                                   smtp_server: SmtpStub) -> None:
    headers = bearer(settings, admin)
    invitation_id = _invite(client, headers, "gone@new.test").json()["invitation"]["id"]
    token = _token(_mail_to(smtp_server, "gone@new.test", 1)[0])
    assert client.post(f"/api/v1/invitations/{invitation_id}/revoke", headers=headers).status_code == 204
    refused = _accept(client, token)
    assert (refused.status_code, "withdrawn" in refused.json()["detail"]) == (400, True)
    twice = client.post(f"/api/v1/invitations/{invitation_id}/revoke", headers=headers)
    assert (twice.status_code, "revoked" in twice.json()["detail"]) == (409, True)
    assert client.post(f"/api/v1/invitations/{invitation_id}/resend", headers=headers).status_code == 409
    assert client.get("/api/v1/invitations", headers=headers).json() == []
    assert audit_actions(settings.database_url, user_id=admin.user_id) == [INVITED, REVOKED]
    with session_scope(settings.database_url) as session:
        assert session.exec(select(User).where(User.email == "gone@new.test")).first() is None


def test_inviting_an_address_again_replaces_the_open_invitation(
        client: TestClient, settings: Settings, admin: Made, smtp_server: SmtpStub) -> None:
    headers = bearer(settings, admin)
    _invite(client, headers, "twice@new.test")
    _invite(client, headers, "twice@new.test", "tenant_admin")
    first, second = (_token(text) for text in _mail_to(smtp_server, "twice@new.test", 2))
    pending = client.get("/api/v1/invitations", headers=headers).json()
    assert [(row["email"], row["role"]) for row in pending] == [("twice@new.test", "tenant_admin")]
    assert _accept(client, first).status_code == 400
    assert _accept(client, second).status_code == 200


def test_a_link_to_an_address_registered_meanwhile_makes_nobody(client: TestClient, settings: Settings,
                                                                  admin: Made) -> None:
    stranger = make_user(settings.database_url)
    with tenant_session(settings.database_url, admin.tenant_id) as session:
        _view, mail = invite(session, settings, identity_of(admin), {"email": stranger.email})
    refused = _accept(client, _token(mail.link))
    assert (refused.status_code, refused.json()["detail"]) == (400, TAKEN)
    with session_scope(settings.database_url) as session:
        holder = session.exec(select(User).where(User.email == stranger.email)).one()
        assert holder.tenant_id == stranger.tenant_id  # still the other broker's, unchanged
        assert holder.id == stranger.user_id


def test_the_pending_list_and_its_actions_stay_in_the_tenant(client: TestClient, settings: Settings,
                                                             admin: Made, smtp_server: SmtpStub) -> None:
    other = make_user(settings.database_url, role=Role.TENANT_ADMIN)
    mine = _invite(client, bearer(settings, admin), "mine@new.test").json()["invitation"]["id"]
    _invite(client, bearer(settings, other), "theirs@new.test")
    theirs = client.get("/api/v1/invitations", headers=bearer(settings, other)).json()
    assert [row["email"] for row in theirs] == ["theirs@new.test"]
    for action in ("resend", "revoke"):
        response = client.post(f"/api/v1/invitations/{mine}/{action}", headers=bearer(settings, other))
        assert response.status_code == 404
        assert "mine@new.test" not in response.text
    smtp_server.wait_for(2)
    pending = client.get("/api/v1/invitations", headers=bearer(settings, admin)).json()
    assert [(row["email"], row["status"]) for row in pending] == [("mine@new.test", "pending")]
    assert len(smtp_server.messages) == 2  # no resend went out


def test_roles_without_manage_users_cannot_see_or_touch_invitations(client: TestClient, settings: Settings,
                                                                    admin: Made) -> None:
    colleague = make_user(settings.database_url, tenant_id=admin.tenant_id, role=Role.RISK_MANAGER)
    mine = _invite(client, bearer(settings, admin), "x@new.test").json()["invitation"]["id"]
    headers = bearer(settings, colleague, Role.RISK_MANAGER)
    assert client.get("/api/v1/invitations", headers=headers).status_code == 403
    assert client.post(f"/api/v1/invitations/{mine}/revoke", headers=headers).status_code == 403
    staff = _invite(client, bearer(settings, admin), "boss@new.test", "platform_admin")
    assert (staff.status_code, "platform admin" in staff.json()["detail"]) == (403, True)


def test_accepting_is_rate_limited_per_ip(client: TestClient) -> None:
    codes = [_accept(client, f"guessed-token-{n:04d}").status_code for n in range(ACCEPT_IP_LIMIT + 1)]
    assert codes == [400] * ACCEPT_IP_LIMIT + [429]
