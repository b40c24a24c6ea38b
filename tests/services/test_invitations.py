"""Invitations at the service level on the real PostgreSQL, inside tenant-confined sessions (row-level
security): bad invites name the field and write nothing, who may invite, the same result for an
address another broker uses, the password kept exactly as typed, and two uses of one link racing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlmodel import select

from models.db import session_scope
from models.invitations import Invitation
from models.tenancy import Role, User
from tests.auth_support import Made, admin, audit_actions, auth_db, auth_settings, make_user, run_as
from veles.config import Settings
from veles.services.auth import AuthError, authenticate
from veles.services.errors import InvalidInput
from veles.services.invitations import (
    INVITED,
    USED_LINK,
    InvitationInvalid,
    InvitationMail,
    accept,
    invite,
    list_invitations,
    preview,
)
from veles.services.permissions import PermissionDenied

__all__ = ["admin", "auth_db"]


@pytest.fixture
def settings(auth_db: str) -> Settings:
    return auth_settings(auth_db)


def _invite(settings: Settings, admin: Made, form: dict[str, Any]) -> InvitationMail:
    return run_as(settings, admin, lambda s, me: invite(s, settings, me, form))[1]


def _token(mail: InvitationMail) -> str:
    return mail.link.rsplit("token=", 1)[1]


@pytest.mark.parametrize(("form", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"email": "nul\x00@broker.test"}, "email"),  # PostgreSQL cannot even compare a NUL
    ({"email": "x@broker.test", "role": "owner"}, "role"),
    ({"email": "x@broker.test", "password": "chosen by the admin"}, "password"),  # the invitee chooses
    ({"email": "x@broker.test", "is_active": False}, "is_active"),
])
def test_bad_invites_name_the_field_and_write_nothing(settings: Settings, admin: Made, form: dict[str, Any],
                                                      field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _invite(settings, admin, form)
    assert refused.value.field == field
    assert run_as(settings, admin, list_invitations) == []


def test_who_may_invite(settings: Settings, admin: Made) -> None:
    for role in (Role.VIEWER, Role.RISK_MANAGER):
        with pytest.raises(PermissionDenied):
            run_as(settings, admin, lambda s, me: invite(s, settings, me, {"email": "x@broker.test"}), role)
        with pytest.raises(PermissionDenied):
            run_as(settings, admin, list_invitations, role)
    with pytest.raises(PermissionDenied, match="platform admin"):
        _invite(settings, admin, {"email": "boss@broker.test", "role": "platform_admin"})
    assert run_as(settings, admin, list_invitations) == []


def test_an_address_another_broker_uses_is_invited_like_any_other(settings: Settings, admin: Made) -> None:
    elsewhere = make_user(settings.database_url)
    fresh = run_as(settings, admin, lambda s, me: invite(s, settings, me, {"email": "new@broker.test"}))[0]
    taken = run_as(settings, admin, lambda s, me: invite(s, settings, me, {"email": elsewhere.email}))[0]
    assert fresh.model_dump(exclude={"id", "email", "created_at", "sent_at", "expires_at"}) == \
        taken.model_dump(exclude={"id", "email", "created_at", "sent_at", "expires_at"})
    assert audit_actions(settings.database_url, user_id=admin.user_id) == [INVITED, INVITED]
    with session_scope(settings.database_url) as session:
        holder = session.exec(select(User).where(User.email == elsewhere.email)).one()
        assert holder.tenant_id == elsewhere.tenant_id


def test_the_password_is_kept_exactly_as_typed(settings: Settings, admin: Made) -> None:
    mail = _invite(settings, admin, {"email": " New.Risk@Broker.test ", "role": "risk_manager"})
    assert mail.to == "new.risk@broker.test"
    with session_scope(settings.database_url) as session:
        shown = preview(session, _token(mail))
    assert (shown.email, shown.role, shown.tenant) == ("new.risk@broker.test", Role.RISK_MANAGER, mail.tenant)
    with session_scope(settings.database_url) as session:
        done = accept(session, _token(mail), " a chosen password  ", " a chosen password  ")
    assert done.email == "new.risk@broker.test"
    assert done.notice is not None
    assert done.notice.to == (admin.email,)
    with session_scope(settings.database_url) as session:
        identity = authenticate(session, "new.risk@broker.test", " a chosen password  ")
        assert (identity.tenant_id, identity.role) == (admin.tenant_id, Role.RISK_MANAGER)
        with pytest.raises(AuthError):
            authenticate(session, "new.risk@broker.test", "a chosen password")
    with pytest.raises(InvitationInvalid, match="already accepted"), \
            session_scope(settings.database_url) as session:
        preview(session, _token(mail))


def test_a_mistyped_confirmation_is_refused_and_the_link_stays_usable(settings: Settings,
                                                                       admin: Made) -> None:
    mail = _invite(settings, admin, {"email": "typo@broker.test"})
    with pytest.raises(InvalidInput) as refused, session_scope(settings.database_url) as session:
        accept(session, _token(mail), "a chosen password", "a chosen passwrod")
    assert refused.value.field == "confirm"
    with session_scope(settings.database_url) as session:
        assert preview(session, _token(mail)).email == "typo@broker.test"


def test_two_uses_of_one_link_at_once_make_one_user(settings: Settings, admin: Made) -> None:
    mail = _invite(settings, admin, {"email": "race@broker.test"})
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def use() -> None:
        start.wait()
        try:
            with session_scope(settings.database_url) as session:
                outcomes.append(accept(session, _token(mail), "a chosen password").email)
        except InvitationInvalid as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == sorted(["race@broker.test", USED_LINK])
    with session_scope(settings.database_url) as session:
        assert len(session.exec(select(User).where(User.email == "race@broker.test")).all()) == 1
        row = session.exec(select(Invitation).where(Invitation.email == "race@broker.test")).one()
        assert row.accepted_at is not None
