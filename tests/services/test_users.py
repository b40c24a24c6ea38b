"""User management on the real PostgreSQL, inside tenant-confined sessions (row-level security).
Invitations (how users are made) are tests/services/test_invitations.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from models.db import session_scope, tenant_session
from models.tenancy import Role, TwoFactor, User
from tests.auth_support import (
    PASSWORD,
    Made,
    admin,
    audit_actions,
    auth_db,
    auth_settings,
    identity_of,
    make_user,
    run_as,
)
from veles.config import Settings
from veles.services.auth import AuthError, Identity, Tokens, refresh, sign_in
from veles.services.errors import Conflict, InvalidInput, NotFound
from veles.services.permissions import PermissionDenied
from veles.services.users import (
    change_password,
    change_phone,
    change_role,
    deactivate_user,
    get_user,
    list_users,
)

__all__ = ["admin", "auth_db"]


@pytest.fixture
def settings(auth_db: str) -> Settings:
    return auth_settings(auth_db)


def _pair(settings: Settings, email: str, password: str = PASSWORD) -> Tokens:
    with session_scope(settings.database_url) as session:
        result = sign_in(session, settings, email, password)
    assert isinstance(result, Tokens)
    return result


def test_an_admin_lists_only_their_own_tenant(settings: Settings, admin: Made) -> None:
    colleague = make_user(settings.database_url, tenant_id=admin.tenant_id)
    make_user(settings.database_url)  # another broker's user
    listed = run_as(settings, admin, list_users)
    assert sorted(view.email for view in listed) == sorted([admin.email, colleague.email])


def test_roles_without_manage_users_are_refused(settings: Settings, admin: Made) -> None:
    for role in (Role.VIEWER, Role.RISK_MANAGER):
        with pytest.raises(PermissionDenied):
            run_as(settings, admin, list_users, role)


def test_only_a_platform_admin_makes_platform_admins(settings: Settings, admin: Made) -> None:
    staff = make_user(settings.database_url, role=Role.PLATFORM_ADMIN, tenant_id=admin.tenant_id)
    with pytest.raises(PermissionDenied, match="platform admin"):
        run_as(settings, admin, lambda s, me: change_role(s, me, staff.user_id, {"role": "viewer"}))


def test_change_role_applies_from_the_next_refresh_and_is_audited(settings: Settings, admin: Made) -> None:
    viewer = make_user(settings.database_url, tenant_id=admin.tenant_id)
    pair = _pair(settings, viewer.email)
    view = run_as(settings, admin, lambda s, me: change_role(
        s, me, viewer.user_id, {"role": "risk_manager"}))
    assert view.role == Role.RISK_MANAGER
    with session_scope(settings.database_url) as session:
        assert refresh(session, settings, pair.refresh_token).identity.role == Role.RISK_MANAGER
    assert audit_actions(settings.database_url, user_id=admin.user_id) == ["user.role_change"]


def test_nobody_changes_or_deactivates_themselves(settings: Settings, admin: Made) -> None:
    with pytest.raises(Conflict, match="yourself"):
        run_as(settings, admin, lambda s, me: change_role(s, me, admin.user_id, {"role": "viewer"}))
    with pytest.raises(Conflict, match="yourself"):
        run_as(settings, admin, lambda s, me: deactivate_user(s, me, admin.user_id))


def test_another_tenants_user_is_not_found(settings: Settings, admin: Made) -> None:
    stranger = make_user(settings.database_url)
    calls: list[Callable[[Session, Identity], object]] = [
        lambda s, me: get_user(s, me, stranger.user_id),
        lambda s, me: change_role(s, me, stranger.user_id, {"role": "tenant_admin"}),
        lambda s, me: deactivate_user(s, me, stranger.user_id),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="No user"):
            run_as(settings, admin, call)
    with session_scope(settings.database_url) as session:
        untouched = session.get(User, stranger.user_id)
        assert untouched is not None
        assert (untouched.is_active, untouched.role) == (True, Role.VIEWER)


def test_deactivating_ends_sign_ins_and_blocks_sign_in(settings: Settings, admin: Made) -> None:
    leaver = make_user(settings.database_url, tenant_id=admin.tenant_id)
    pair = _pair(settings, leaver.email)
    gone = run_as(settings, admin, lambda s, me: deactivate_user(s, me, leaver.user_id))
    assert not gone.is_active
    with pytest.raises(AuthError), session_scope(settings.database_url) as session:
        refresh(session, settings, pair.refresh_token)
    with pytest.raises(AuthError, match="Wrong email or password"), session_scope(settings.database_url) as s:
        sign_in(s, settings, leaver.email, PASSWORD)


def test_change_own_password_checks_the_current_one_and_ends_sign_ins(settings: Settings,
                                                                     admin: Made) -> None:
    pair = _pair(settings, admin.email)
    for form, field in [
        ({"current_password": "wrong", "new_password": "brand new password"}, "current_password"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ]:
        url = settings.database_url
        with pytest.raises(InvalidInput) as refused, tenant_session(url, admin.tenant_id) as db:
            change_password(db, identity_of(admin, Role.VIEWER), form)
        assert refused.value.field == field
    run_as(settings, admin, lambda s, me: change_password(
        s, me, {"current_password": PASSWORD, "new_password": "brand new password"}))
    with pytest.raises(AuthError, match="signed out"), session_scope(settings.database_url) as session:
        refresh(session, settings, pair.refresh_token)
    _pair(settings, admin.email, "brand new password")
    assert "user.password_change" in audit_actions(settings.database_url, user_id=admin.user_id)


def test_change_own_phone_and_sms_sign_in(settings: Settings, admin: Made) -> None:
    for attempt in ({"phone": "+4915199999999", "sms_sign_in": True},  # a stolen session alone
                    {"phone": "+4915199999999", "sms_sign_in": True, "current_password": "not it"}):
        with pytest.raises(InvalidInput) as refused:
            run_as(settings, admin, lambda s, me, form=attempt: change_phone(s, me, form))
        assert refused.value.field == "current_password"
    view = run_as(settings, admin, lambda s, me: change_phone(
        s, me, {"phone": " +4915112345678 ", "sms_sign_in": True, "current_password": PASSWORD}))
    assert (view.phone, view.two_factor) == ("+4915112345678", TwoFactor.SMS)
    with pytest.raises(InvalidInput) as refused:  # SMS codes stay on: the number cannot go
        run_as(settings, admin,
               lambda s, me: change_phone(s, me, {"phone": "", "current_password": PASSWORD}))
    assert refused.value.field == "phone"
    with pytest.raises(InvalidInput) as refused:
        run_as(settings, admin, lambda s, me: change_phone(s, me, {"phone": "12345",
                                                                 "current_password": PASSWORD}))
    assert refused.value.field == "phone"
    view = run_as(settings, admin, lambda s, me: change_phone(s, me, {"phone": None, "sms_sign_in": False,
                                                                      "current_password": PASSWORD}),
                Role.VIEWER)
    assert (view.phone, view.two_factor) == (None, TwoFactor.NONE)
    with session_scope(settings.database_url) as session:
        stored = session.exec(select(User).where(User.id == admin.user_id)).one()
        assert (stored.phone, stored.two_factor) == (None, TwoFactor.NONE)
