"""Sign-up and platform administration against the real PostgreSQL (and Ray for suspend/resume)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from reflex import constants
from reflex.istate.data import RouterData
from sqlalchemy import update
from sqlmodel import col, select

from actors.tenant_directory import find
from models.audit import AuditLog
from models.auth import EmailVerification
from models.billing import BillingStatus
from models.columns import utcnow
from models.db import session_scope, tenant_session, upgrade
from models.tenancy import Plan, Role, Tenant, TenantStatus, User
from tests.stubs.smtp_stub import SmtpStub
from veles.config import Settings, get_settings
from veles.services.admin import audit_entries, set_tenant_status, tenant_usage, tenants_usage
from veles.services.auth import AuthError, authenticate
from veles.services.connections import create_connection
from veles.services.credentials import generate_key
from veles.services.engine import stop_engine
from veles.services.permissions import PermissionDenied
from veles.services.signup import (
    ANSWER,
    SignupError,
    SignupForm,
    VerificationLinkInvalid,
    confirm_signup,
    sign_up,
)
from veles.services.tokens import as_utc
from veles_ui.state.session import SessionState
from veles_ui.state.signup import SignupState, VerifyEmailState

GOOD = {"broker": "Acme FX", "email": "Boss@Acme.test ", "password": "correct horse", "plan": "professional"}
LINK = re.compile(r"/verify-email\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:
    upgrade(pg_url)
    return pg_url


def _settings(db: str, **changes: object) -> Settings:
    return Settings(_env_file=None, database_url=db, redis_url=None, ray_address=None, **changes)


def _form(**changes: str) -> SignupForm:
    return SignupForm.from_form({**GOOD, **changes})


@dataclass(frozen=True)
class SignedUp:
    """A confirmed sign-up: its tenant and first admin."""

    tenant_id: int
    user_id: int


def _signed_up(db: str, form: SignupForm) -> SignedUp:
    """Sign up and follow the e-mailed link."""
    mail = sign_up(_settings(db), form)
    assert mail.link is not None
    token = LINK.search(mail.link)
    assert token is not None
    tenant_id = confirm_signup(_settings(db), token.group(1))
    with session_scope(db) as session:
        user = session.exec(select(User).where(User.tenant_id == tenant_id)).one()
        assert user.id is not None
        return SignedUp(tenant_id=tenant_id, user_id=user.id)


def _tenant(db: str, name: str) -> Tenant | None:
    with session_scope(db) as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == name)).first()
        if tenant is not None:
            session.expunge(tenant)
        return tenant


def test_sign_up_waits_for_the_email_link_then_is_a_starter_trial(db: str) -> None:
    mail = sign_up(_settings(db), _form())
    assert mail.to == "boss@acme.test"
    assert mail.link is not None
    assert mail.link.startswith("http://localhost:3000/verify-email?token=")
    assert mail.link in mail.text
    pending = _tenant(db, "Acme FX")
    assert pending is not None
    assert pending.status is TenantStatus.PENDING_VERIFICATION
    assert pending.plan is Plan.STARTER  # professional was picked: only a paid subscription gives it
    assert pending.plan_chosen is Plan.PROFESSIONAL  # what Upgrade offers
    assert pending.billing_status is BillingStatus.TRIALING
    with session_scope(db) as session, pytest.raises(AuthError, match="Confirm your e-mail"):
        authenticate(session, "boss@acme.test", "correct horse")
    token = LINK.search(mail.link)
    assert token is not None
    tenant_id = confirm_signup(_settings(db), token.group(1))
    active = _tenant(db, "Acme FX")
    assert active is not None
    assert active.id == tenant_id
    assert active.status is TenantStatus.ACTIVE
    assert active.plan is Plan.STARTER
    assert active.billing_status is BillingStatus.TRIALING
    assert active.trial_ends_at is not None
    assert timedelta(days=13) < as_utc(active.trial_ends_at) - utcnow() <= timedelta(days=14)
    with session_scope(db) as session:
        identity = authenticate(session, "boss@acme.test", "correct horse")
        assert (identity.tenant_id, identity.role) == (tenant_id, Role.TENANT_ADMIN)
        user = session.get(User, identity.user_id)
        assert user is not None
        assert user.email_verified_at is not None
    with pytest.raises(VerificationLinkInvalid, match="already used"):
        confirm_signup(_settings(db), token.group(1))
    with pytest.raises(VerificationLinkInvalid, match="not valid"):
        confirm_signup(_settings(db), token.group(1) + "x")


def test_an_expired_link_is_refused_and_frees_the_name_and_address(db: str) -> None:
    mail = sign_up(_settings(db), _form(broker="Late Ltd", email="late@late.test"))
    assert mail.link is not None
    with session_scope(db) as session:
        session.execute(update(EmailVerification).values(expires_at=utcnow() - timedelta(seconds=1))
                        .where(col(EmailVerification.used_at).is_(None)))
    token = LINK.search(mail.link)
    assert token is not None
    with pytest.raises(VerificationLinkInvalid, match="expired"):
        confirm_signup(_settings(db), token.group(1))
    again = sign_up(_settings(db), _form(broker="Late Ltd", email="late@late.test"))  # not squatted
    assert again.link is not None
    assert _signed_up_link_works(db, again.link)


def _signed_up_link_works(db: str, link: str) -> bool:
    token = LINK.search(link)
    assert token is not None
    return confirm_signup(_settings(db), token.group(1)) > 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"broker": " "}, "broker"),
        ({"broker": "x" * 121}, "broker"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "otherfx2026"}, "password"),  # built from the broker name
        ({"plan": "platinum"}, "plan"),
    ],
)
def test_bad_field_is_named_and_nothing_is_written(db: str, changes: dict[str, str], field: str) -> None:
    with session_scope(db) as session:
        before = len(session.exec(select(Tenant)).all())
    with pytest.raises(SignupError) as refused:
        sign_up(_settings(db), _form(**{"email": "other@acme.test", "broker": "Other FX", **changes}))
    assert refused.value.field == field
    with session_scope(db) as session:
        assert len(session.exec(select(Tenant)).all()) == before


def test_guessable_password_shows_the_estimators_advice(db: str) -> None:
    with pytest.raises(SignupError) as refused:
        sign_up(_settings(db), _form(broker="Advice Co", email="a@advice.test", password="Password123!"))
    assert "too easy to guess" in str(refused.value)
    assert "commonly used password" in str(refused.value)


def test_a_taken_email_gets_the_same_answer_and_a_note_not_an_account(db: str) -> None:
    _signed_up(db, _form(broker="Taken Ltd", email="first@taken.test"))
    with pytest.raises(SignupError) as broker:
        sign_up(_settings(db), _form(broker="Taken Ltd", email="second@taken.test"))
    assert broker.value.field == "broker"
    note = sign_up(_settings(db), _form(broker="Taken Two", email="FIRST@taken.test"))
    assert note.to == "first@taken.test"
    assert note.link is None
    assert "already has one" in note.text
    with session_scope(db) as session:
        assert session.exec(select(User).where(User.email == "second@taken.test")).first() is None
        assert session.exec(select(Tenant).where(Tenant.name == "Taken Two")).first() is None


def test_the_portal_answers_alike_and_the_link_starts_the_tenant(
    db: str, smtp_server: SmtpStub, monkeypatch: pytest.MonkeyPatch, ray_local: None
) -> None:
    """The sign-up events themselves: same answer for a new and a taken address, e-mail after it,
    per-IP limit, and /verify-email activating the tenant (whose engine starts with its first MT5
    connection: nothing runs for it yet)."""
    smtp = {k.upper(): str(v) for k, v in smtp_server.settings_fields().items() if v is not None}
    for name, value in {"DATABASE_URL": db, "SIGNUP_IP_LIMIT": "2", **smtp}.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_URL", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        answers = []
        for form in (_form(broker="Portal Co", email="new@portal.test"),
                     _form(broker="Portal Two", email="first@taken.test")):
            tab = _tab("/signup")
            asyncio.run(_drain(SignupState.sign_up.fn(tab, dataclasses.asdict(form))))
            assert (tab.error_field, tab.error) == ("", "")
            answers.append(tab.signup_sent)
        assert answers[0] == answers[1] == ANSWER
        smtp_server.wait_for(2)
        bodies = {mail.rcpt_tos[0]: str(mail.message.get_body(preferencelist=("plain",)).get_content())
                  for mail in smtp_server.messages}
        assert "already has one" in bodies["first@taken.test"]
        token = LINK.search(bodies["new@portal.test"])
        assert token is not None

        tab = _tab("/signup")
        third = dataclasses.asdict(_form(broker="Third", email="3@p.test"))
        asyncio.run(_drain(SignupState.sign_up.fn(tab, third)))
        assert tab.error_field == "form"
        assert "Too many sign-up attempts; try again in" in tab.error

        verify = _tab(f"/verify-email?token={token.group(1)}", VerifyEmailState)
        asyncio.run(VerifyEmailState.confirm.fn(verify))
        assert (verify.verified, verify.verify_error) == (True, "")
        tenant = _tenant(db, "Portal Co")
        assert tenant is not None
        assert tenant.status is TenantStatus.ACTIVE
        settings = get_settings()
        # no connection yet: nothing runs for it
        assert find(tenant.id or 0, "supervisor", settings.ray_namespace) is None
    finally:
        get_settings.cache_clear()


def _tab(url: str, state: type[SessionState] = SignupState) -> Any:
    tab = state(_reflex_internal_init=True)
    tab.router = RouterData.from_router_data({constants.RouteVar.CLIENT_IP: "203.0.113.9",
                                              constants.RouteVar.PATH: url.split("?")[0],
                                              "asPath": url})
    return tab


async def _drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def test_usage_lists_plan_limits_and_refuses_non_platform_roles(db: str) -> None:
    identity = _signed_up(db, _form(broker="Usage Co", email="admin@usage.test", plan="starter"))
    usage = {u.tenant_id: u for u in tenants_usage(Role.PLATFORM_ADMIN, db, {identity.tenant_id: 150})}
    mine = usage[identity.tenant_id]
    assert (mine.plan, mine.users, mine.servers, mine.max_servers) == ("Starter", 1, 0, 1)
    assert (mine.accounts, mine.max_accounts, mine.over_limit) == (150, 100, True)
    for role in (Role.TENANT_ADMIN, Role.RISK_MANAGER, Role.VIEWER):
        with pytest.raises(PermissionDenied):
            tenants_usage(role, db)
        with pytest.raises(PermissionDenied):
            audit_entries(role, db)


def test_suspend_stops_the_engine_and_sign_in_resume_starts_it(db: str, ray_local: None) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=None, ray_namespace="veles-test",
                        credentials_keys=SecretStr(generate_key()), simulator_password=SecretStr("sim-pass"))
    identity = _signed_up(db, _form(broker="Suspend Me", email="admin@suspend.test"))
    with tenant_session(db, identity.tenant_id) as session:  # an engine runs only for a connection
        create_connection(session, settings, identity.tenant_id,
                          {"server": "sim://suspend", "login": 1001, "password": "sim-pass"})
    with session_scope(db) as session:
        admin = User(tenant_id=identity.tenant_id, email="ops@platform.test", password_hash="x",
                     role=Role.PLATFORM_ADMIN)
        session.add(admin)
        session.flush()
        admin_id = admin.id
    assert admin_id is not None
    with pytest.raises(PermissionDenied):
        asyncio.run(set_tenant_status(settings, Role.TENANT_ADMIN, identity.user_id, identity.tenant_id,
                                      TenantStatus.SUSPENDED))

    async def scenario() -> tuple[bool, bool]:
        await set_tenant_status(settings, Role.PLATFORM_ADMIN, admin_id, identity.tenant_id,
                                TenantStatus.ACTIVE)
        supervisor = find(identity.tenant_id, "supervisor", settings.ray_namespace)
        running = (await supervisor.status.remote())["running"]
        await set_tenant_status(settings, Role.PLATFORM_ADMIN, admin_id, identity.tenant_id,
                                TenantStatus.SUSPENDED)
        stopped = not (await supervisor.status.remote())["running"]
        await stop_engine(settings)  # the suspended tenant's idle supervisor too
        return running, stopped

    assert asyncio.run(scenario()) == (True, True)
    with session_scope(db) as session, pytest.raises(AuthError, match="suspended"):
        authenticate(session, "admin@suspend.test", "correct horse")
    actions = [(e.action, e.target) for e in audit_entries(Role.PLATFORM_ADMIN, db, action="tenant.")]
    assert actions[:2] == [("tenant.suspend", f"tenant:{identity.tenant_id}"),
                           ("tenant.resume", f"tenant:{identity.tenant_id}")]
    with session_scope(db) as session:
        assert session.exec(select(AuditLog).where(AuditLog.actor_user_id == admin_id)).first() is not None


def test_unknown_tenant_and_status_are_refused_by_name(db: str) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=None)
    with pytest.raises(LookupError, match="tenant"):
        asyncio.run(set_tenant_status(settings, Role.PLATFORM_ADMIN, 1, 999_999, TenantStatus.SUSPENDED))
    with pytest.raises(ValueError, match="status"):
        asyncio.run(set_tenant_status(settings, Role.PLATFORM_ADMIN, 1, 1, TenantStatus.CLOSED))


def test_plan_page_usage_is_the_tenants_own_and_needs_billing_permission(db: str) -> None:
    identity = _signed_up(db, _form(broker="Plan Co", email="admin@plan.test", plan="enterprise"))
    with session_scope(db) as session:  # what billing (a later issue) would do on payment
        session.execute(update(Tenant).where(col(Tenant.id) == identity.tenant_id)
                        .values(plan=Plan.ENTERPRISE))
    mine = tenant_usage(Role.TENANT_ADMIN, db, identity.tenant_id, live_accounts=7)
    assert (mine.name, mine.plan, mine.accounts, mine.max_accounts, mine.max_servers) == (
        "Plan Co", "Enterprise", 7, None, None)
    assert not mine.over_limit
    with pytest.raises(PermissionDenied):
        tenant_usage(Role.RISK_MANAGER, db, identity.tenant_id)
    with pytest.raises(LookupError, match="tenant"):
        tenant_usage(Role.TENANT_ADMIN, db, 999_999)
