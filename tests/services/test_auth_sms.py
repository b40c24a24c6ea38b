"""SMS codes at sign-in, sent through the official Twilio client to the local Twilio stub: codes
expire, work once, and wrong ones count toward the lockout."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from models.auth import LoginChallenge
from models.columns import utcnow
from models.db import session_scope
from models.tenancy import TwoFactor
from tests.auth_support import Made, audit_actions, auth_db, auth_settings, make_user
from tests.stubs.twilio_stub import TwilioStub
from veles.config import Settings
from veles.services.auth import AuthError, Challenge, CodeNotSent, Throttled, Tokens, sign_in, verify_code

__all__ = ["auth_db"]
PHONE = "+4915112345678"


@pytest.fixture
def settings(auth_db: str, twilio_stub: TwilioStub) -> Settings:
    return auth_settings(auth_db, sign_in_free_failures=3, **twilio_stub.settings_fields())


@pytest.fixture
def sms_user(settings: Settings) -> Made:
    return make_user(settings.database_url, phone=PHONE, two_factor=TwoFactor.SMS)


def _challenge(settings: Settings, user: Made) -> Challenge:
    with session_scope(settings.database_url) as session:
        result = sign_in(session, settings, user.email, user.password, ip="192.0.2.1")
    assert isinstance(result, Challenge)
    return result


def _texted_code(stub: TwilioStub) -> str:
    match = re.search(r"\b(\d{6})\b", stub.messages[-1].body)
    assert match is not None, stub.messages[-1].body
    return match.group(1)


def _verify(settings: Settings, challenge: Challenge, code: str) -> Tokens:
    with session_scope(settings.database_url) as session:
        return verify_code(session, settings, challenge.challenge, code, ip="192.0.2.1")


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_the_password_gets_a_challenge_and_the_texted_code_gets_tokens(
    settings: Settings, sms_user: Made, twilio_stub: TwilioStub
) -> None:
    challenge = _challenge(settings, sms_user)
    assert (challenge.phone_hint, challenge.expires_in) == ("…78", settings.sms_code_minutes * 60)
    assert [(m.to, m.from_) for m in twilio_stub.messages] == [(PHONE, twilio_stub.from_number)]
    tokens = _verify(settings, challenge, f" {_texted_code(twilio_stub)} ")
    assert tokens.identity.user_id == sms_user.user_id
    assert audit_actions(settings.database_url, user_id=sms_user.user_id) == [
        "auth.code_sent", "auth.sign_in"]


def test_a_code_works_once(settings: Settings, sms_user: Made, twilio_stub: TwilioStub) -> None:
    challenge = _challenge(settings, sms_user)
    code = _texted_code(twilio_stub)
    _verify(settings, challenge, code)
    with pytest.raises(AuthError, match="expired or was already used"):
        _verify(settings, challenge, code)


def test_an_expired_code_is_refused(settings: Settings, sms_user: Made, twilio_stub: TwilioStub) -> None:
    challenge = _challenge(settings, sms_user)
    with session_scope(settings.database_url) as session:
        session.execute(update(LoginChallenge).where(col(LoginChallenge.user_id) == sms_user.user_id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="expired"):
        _verify(settings, challenge, _texted_code(twilio_stub))


# Changed deliberately (issue 13): wrong codes used to lock the account; now they make the
# (e-mail, IP) pair wait, like wrong passwords.
def test_wrong_codes_count_toward_the_throttle(settings: Settings, sms_user: Made,
                                               twilio_stub: TwilioStub) -> None:
    challenge = _challenge(settings, sms_user)
    code = _texted_code(twilio_stub)
    for _ in range(3):
        with pytest.raises(AuthError, match="Wrong code") as refused:
            _verify(settings, challenge, _wrong(code))
        assert not isinstance(refused.value, Throttled)
    with pytest.raises(Throttled):
        _verify(settings, challenge, code)  # the right code too, while the pair waits
    assert audit_actions(settings.database_url, user_id=sms_user.user_id)[-3:] == ["auth.code_failed"] * 3


def test_five_wrong_codes_spend_the_challenge(settings: Settings, sms_user: Made,
                                              twilio_stub: TwilioStub) -> None:
    roomy = settings.model_copy(update={"sign_in_free_failures": 50})
    challenge = _challenge(roomy, sms_user)
    code = _texted_code(twilio_stub)
    for _ in range(5):
        with pytest.raises(AuthError, match="Wrong code"):
            _verify(roomy, challenge, _wrong(code))
    with pytest.raises(AuthError, match="expired or was already used"):
        _verify(roomy, challenge, code)


def _challenges(settings: Settings, user: Made) -> int:
    with session_scope(settings.database_url) as session:
        query = select(func.count()).select_from(LoginChallenge).where(LoginChallenge.user_id == user.user_id)
        return int(session.exec(query).one())


def test_a_refused_text_keeps_no_challenge_and_says_so(settings: Settings, sms_user: Made,
                                                        twilio_stub: TwilioStub) -> None:
    twilio_stub.reject(PHONE, 21211, "The 'To' number is not a valid phone number.")
    url = settings.database_url
    with pytest.raises(CodeNotSent, match="could not be sent"), session_scope(url) as session:
        sign_in(session, settings, sms_user.email, sms_user.password)
    assert _challenges(settings, sms_user) == 0
    assert audit_actions(settings.database_url, user_id=sms_user.user_id) == ["auth.code_not_sent"]


def test_without_twilio_settings_or_a_phone_no_code_can_be_sent(settings: Settings) -> None:
    unconfigured = auth_settings(settings.database_url)
    user = make_user(settings.database_url, phone=PHONE, two_factor=TwoFactor.SMS)
    with pytest.raises(CodeNotSent), session_scope(settings.database_url) as session:
        sign_in(session, unconfigured, user.email, user.password)
    phoneless = make_user(settings.database_url, two_factor=TwoFactor.SMS)
    with pytest.raises(CodeNotSent, match="no phone number"), session_scope(settings.database_url) as session:
        sign_in(session, settings, phoneless.email, phoneless.password)
