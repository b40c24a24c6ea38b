"""The sign-in flow on the real PostgreSQL: passwords, the (e-mail, IP) throttle, refresh rotation
and reuse, logout, and the audit rows each step leaves."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col

from models.auth import SignInThrottle
from models.columns import utcnow
from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, TenantStatus, User
from tests.auth_support import PASSWORD, Made, audit_actions, auth_db, auth_settings, make_user
from veles.config import Settings
from veles.services import tokens
from veles.services.auth import (
    AuthError,
    PasswordChangeRequired,
    RefreshReused,
    Tokens,
    decode_token,
    hash_password,
    logout,
    refresh,
    sign_in,
    verify_password,
)
from veles.services.errors import InvalidInput
from veles.services.throttle import Throttled, pair_key

__all__ = ["auth_db"]


@pytest.fixture
def settings(auth_db: str) -> Settings:
    return auth_settings(auth_db, sign_in_free_failures=3, sign_in_max_delay=60)


def _sign_in(settings: Settings, email: str, password: str = PASSWORD) -> Tokens:
    with session_scope(settings.database_url) as session:
        result = sign_in(session, settings, email, password, ip="192.0.2.1")
    assert isinstance(result, Tokens)
    return result


def _refresh(settings: Settings, token: str) -> Tokens:
    with session_scope(settings.database_url) as session:
        return refresh(session, settings, token, ip="192.0.2.1")


def _wrong(settings: Settings, email: str, ip: str = "192.0.2.1") -> AuthError:
    with pytest.raises(AuthError) as caught, session_scope(settings.database_url) as session:
        sign_in(session, settings, email, "wrong password", ip=ip)
    return caught.value


def _wait_over(settings: Settings, email: str, ip: str = "192.0.2.1") -> None:
    """The pair's wait runs out (the clock moved on)."""
    with session_scope(settings.database_url) as session:
        session.execute(update(SignInThrottle).where(col(SignInThrottle.key_hash) == pair_key(email, ip))
                        .values(retry_at=utcnow() - timedelta(seconds=1)))


def test_password_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("s3cret!"), hash_password("s3cret!")
    assert first != second
    assert first.startswith("$argon2id$")
    assert verify_password(first, "s3cret!")
    assert not verify_password(first, "s3cret")
    assert not verify_password("not-a-hash", "s3cret!")


def test_sign_in_gives_a_token_pair_for_the_users_tenant_role_and_plan(settings: Settings) -> None:
    user = make_user(settings.database_url, role=Role.TENANT_ADMIN, plan=Plan.PROFESSIONAL)
    pair = _sign_in(settings, f"  {user.email.upper()} ")
    identity = decode_token(pair.access_token, settings.secret_key.get_secret_value())
    assert (identity.user_id, identity.tenant_id, identity.role, identity.plan) == (
        user.user_id, user.tenant_id, Role.TENANT_ADMIN, Plan.PROFESSIONAL)
    assert pair.expires_in == settings.access_token_minutes * 60
    assert pair.refresh_expires_in == settings.refresh_token_days * 86400
    assert audit_actions(settings.database_url, user_id=user.user_id) == ["auth.sign_in"]


def test_failures_are_audited_and_unknown_emails_look_the_same(settings: Settings) -> None:
    user = make_user(settings.database_url)
    known, unknown = _wrong(settings, user.email), _wrong(settings, "nobody-here@broker.test")
    assert str(known) == str(unknown) == "Wrong email or password."
    assert audit_actions(settings.database_url, user_id=user.user_id) == ["auth.sign_in_failed"]
    assert audit_actions(settings.database_url, email="nobody-here@broker.test") == ["auth.sign_in_failed"]


# Changed deliberately (issue 13): five failures used to lock the account for 15 minutes for
# everyone, with 423 only for real addresses. Now the failing (e-mail, IP) pair waits, doubling.
def test_failures_past_the_free_ones_make_the_pair_wait_doubling_and_capped(settings: Settings) -> None:
    user = make_user(settings.database_url)
    assert not any(isinstance(_wrong(settings, user.email), Throttled) for _ in range(3))
    waiting = _wrong(settings, user.email)  # straight after the third failure
    assert isinstance(waiting, Throttled)
    assert waiting.retry_after == 1
    assert "try again in 1 s" in str(waiting)
    with pytest.raises(Throttled), session_scope(settings.database_url) as session:
        sign_in(session, settings, user.email, PASSWORD, ip="192.0.2.1")  # even the right password waits
    waits = []
    for _ in range(8):  # each further failure doubles the wait, up to SIGN_IN_MAX_DELAY (60 s here)
        _wait_over(settings, user.email)
        assert not isinstance(_wrong(settings, user.email), Throttled)
        refused = _wrong(settings, user.email)
        assert isinstance(refused, Throttled)
        waits.append(refused.retry_after)
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert audit_actions(settings.database_url, user_id=user.user_id) == ["auth.sign_in_failed"] * 11
    _wait_over(settings, user.email)
    _sign_in(settings, user.email)  # the wait over, the right password works and clears the pair
    assert not any(isinstance(_wrong(settings, user.email), Throttled) for _ in range(3))


def test_a_victim_on_another_network_is_not_slowed_by_an_attack(settings: Settings) -> None:
    user = make_user(settings.database_url)
    for _ in range(4):
        _wrong(settings, user.email, ip="198.51.100.66")
    assert isinstance(_wrong(settings, user.email, ip="198.51.100.66"), Throttled)
    with session_scope(settings.database_url) as session:
        assert isinstance(sign_in(session, settings, user.email, PASSWORD, ip="192.0.2.1"), Tokens)
    with session_scope(settings.database_url) as session:  # nothing on the account itself
        stored = session.get(User, user.user_id)
        assert stored is not None
        assert stored.locked_until is None


def test_unknown_and_known_addresses_get_the_same_answers(settings: Settings) -> None:
    user = make_user(settings.database_url)
    known = [_wrong(settings, user.email) for _ in range(4)]
    unknown = [_wrong(settings, "nobody-else@broker.test") for _ in range(4)]
    assert [(type(e), str(e)) for e in known] == [(type(e), str(e)) for e in unknown]
    assert isinstance(known[-1], Throttled)


def test_a_success_resets_the_failure_count(settings: Settings) -> None:
    user = make_user(settings.database_url)
    _wrong(settings, user.email)
    _wrong(settings, user.email)
    _sign_in(settings, user.email)
    assert not isinstance(_wrong(settings, user.email), Throttled)
    assert not isinstance(_wrong(settings, user.email), Throttled)
    assert not isinstance(_wrong(settings, user.email), Throttled)


def test_a_deactivated_user_or_suspended_broker_cannot_sign_in(settings: Settings) -> None:
    gone, suspended = make_user(settings.database_url), make_user(settings.database_url)
    with session_scope(settings.database_url) as session:
        session.execute(update(User).where(col(User.id) == gone.user_id).values(is_active=False))
        session.execute(update(Tenant).where(col(Tenant.id) == suspended.tenant_id)
                        .values(status=TenantStatus.SUSPENDED))
    with pytest.raises(AuthError, match="Wrong email or password"), session_scope(settings.database_url) as s:
        sign_in(s, settings, gone.email, PASSWORD)
    with pytest.raises(AuthError, match="suspended"), session_scope(settings.database_url) as s:
        sign_in(s, settings, suspended.email, PASSWORD)


def test_refresh_rotates_and_the_old_token_is_spent(settings: Settings) -> None:
    user = make_user(settings.database_url)
    first = _sign_in(settings, user.email)
    second = _refresh(settings, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert decode_token(second.access_token, settings.secret_key.get_secret_value()).user_id == user.user_id
    third = _refresh(settings, second.refresh_token)  # the new one works, once
    assert third.refresh_token not in {first.refresh_token, second.refresh_token}


def test_reusing_a_spent_refresh_token_ends_the_whole_sign_in(settings: Settings) -> None:
    user = make_user(settings.database_url)
    first = _sign_in(settings, user.email)
    second = _refresh(settings, first.refresh_token)  # the legitimate client rotated
    other_sign_in = _sign_in(settings, user.email)  # another device: a separate family
    with pytest.raises(RefreshReused, match="used twice"):
        _refresh(settings, first.refresh_token)  # a thief replays the copied, spent token
    with pytest.raises(AuthError, match="signed out"):
        _refresh(settings, second.refresh_token)  # the family is revoked: the thief's gain is gone too
    _refresh(settings, other_sign_in.refresh_token)
    assert "auth.refresh_reuse" in audit_actions(settings.database_url, user_id=user.user_id)


def test_two_refreshes_with_one_token_at_once_let_only_one_through(settings: Settings) -> None:
    """The spend is one conditional UPDATE: the loser waits for the winner's row lock, then sees the
    token spent and treats it as a replay."""
    pair = _sign_in(settings, make_user(settings.database_url).email)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            _refresh(settings, pair.refresh_token)
            outcomes.append("rotated")
        except AuthError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["RefreshReused", "rotated"]


def test_refresh_takes_the_current_role_and_refuses_deactivated_users(settings: Settings) -> None:
    user = make_user(settings.database_url, role=Role.VIEWER)
    pair = _sign_in(settings, user.email)
    with session_scope(settings.database_url) as session:
        session.execute(update(User).where(col(User.id) == user.user_id).values(role=Role.RISK_MANAGER))
    pair = _refresh(settings, pair.refresh_token)
    assert decode_token(pair.access_token, settings.secret_key.get_secret_value()).role == Role.RISK_MANAGER
    with session_scope(settings.database_url) as session:
        session.execute(update(User).where(col(User.id) == user.user_id).values(is_active=False))
    with pytest.raises(AuthError, match="no longer active"):
        _refresh(settings, pair.refresh_token)


def test_logout_ends_the_sign_in_and_may_be_repeated(settings: Settings) -> None:
    user = make_user(settings.database_url)
    pair = _sign_in(settings, user.email)
    rotated = _refresh(settings, pair.refresh_token)
    for _ in range(2):
        with session_scope(settings.database_url) as session:
            logout(session, settings, rotated.refresh_token, ip="192.0.2.1")
    with pytest.raises(AuthError, match="signed out"):
        _refresh(settings, rotated.refresh_token)
    assert audit_actions(settings.database_url, user_id=user.user_id)[-2:] == ["auth.logout", "auth.logout"]


def _issued_refresh(settings: Settings, user: Made, secret: str, days: int) -> str:
    identity = tokens.Identity(user_id=user.user_id, tenant_id=user.tenant_id, role=Role.VIEWER,
                               email=user.email)
    with session_scope(settings.database_url) as session:
        return tokens.issue_refresh(session, identity, secret, days)


def test_expired_foreign_and_tampered_refresh_tokens_are_refused(settings: Settings) -> None:
    user = make_user(settings.database_url)
    secret = settings.secret_key.get_secret_value()
    with pytest.raises(AuthError, match="expired"):
        _refresh(settings, _issued_refresh(settings, user, secret, days=-1))
    with pytest.raises(AuthError, match="Invalid"):  # signed with another key, even though stored
        _refresh(settings, _issued_refresh(settings, user, "another-key-0123456789-0123456789-xyz", days=1))
    good = _sign_in(settings, user.email).refresh_token
    header, payload, signature = good.split(".")
    with pytest.raises(AuthError, match="Invalid"):
        _refresh(settings, f"{header}.{payload}x.{signature}")
    with pytest.raises(AuthError, match="Invalid"):
        _refresh(settings, f"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")  # alg=none, no signature
    _refresh(settings, good)  # none of that spent the real one


def test_the_flow_also_holds_on_sqlite(tmp_path: Path) -> None:
    """The embedded default: SQLite hands timestamps back naive, throttle times must still compare."""
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    upgrade(url)
    embedded = auth_settings(url, sign_in_free_failures=2)
    user = make_user(url)
    first = _sign_in(embedded, user.email)
    _refresh(embedded, first.refresh_token)
    with pytest.raises(RefreshReused):
        _refresh(embedded, first.refresh_token)
    _wrong(embedded, user.email)
    _wrong(embedded, user.email)
    assert isinstance(_wrong(embedded, user.email), Throttled)
    with pytest.raises(Throttled), session_scope(url) as session:
        sign_in(session, embedded, user.email, PASSWORD, ip="192.0.2.1")


def test_a_temporary_password_expires_and_must_be_replaced(settings: Settings) -> None:
    user = make_user(settings.database_url, temporary=True)
    with pytest.raises(PasswordChangeRequired), session_scope(settings.database_url) as session:
        sign_in(session, settings, user.email, PASSWORD, ip="192.0.2.1")
    with pytest.raises(InvalidInput) as weak, session_scope(settings.database_url) as session:
        sign_in(session, settings, user.email, PASSWORD, ip="192.0.2.1", new_password=user.email)
    assert weak.value.field == "new_password"
    with session_scope(settings.database_url) as session:  # the temporary password runs out
        session.execute(update(User).where(col(User.id) == user.user_id)
                        .values(password_expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="temporary password has expired"), \
            session_scope(settings.database_url) as session:
        sign_in(session, settings, user.email, PASSWORD, ip="192.0.2.1", new_password="quiet lagoon at dawn")
