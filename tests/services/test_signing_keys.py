"""SECRET_KEY rotation: everything signed names its key (`kid`); new things are signed with the
current key; what a previous key signed verifies only until the overlap ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers the tables)
from models.auth import LoginChallenge
from models.db import upgrade
from models.tenancy import Role
from veles.config import Settings
from veles.reports.settings import ReportSettings
from veles.services import tokens
from veles.services.reports import LinkInvalid, _signature, file_by_link
from veles.services.signing_keys import Keyring, SigningKey, key_id, keyring
from veles.services.tokens import AuthError, Identity, decode_token, issue_token

OLD, NEW = "old-key-" + "o" * 40, "new-key-" + "n" * 40
IDENTITY = Identity(user_id=7, tenant_id=3, role=Role.VIEWER, email="v@test")


def settings(until: datetime | None, previous: str | None = OLD) -> Settings:
    return Settings(_env_file=None, secret_key=SecretStr(NEW),
                    secret_key_previous=SecretStr(previous) if previous else None,
                    secret_key_previous_until=until)


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_tokens_name_the_current_key_and_are_signed_with_it() -> None:
    ring = keyring(settings(soon()))
    token = issue_token(IDENTITY, ring, 5)
    assert jwt.get_unverified_header(token)["kid"] == key_id(NEW) != key_id(OLD)
    assert jwt.decode(token, NEW, algorithms=["HS256"])["sub"] == "7"
    assert decode_token(token, ring) == IDENTITY


def test_a_previous_key_verifies_only_during_the_overlap() -> None:
    old_token = issue_token(IDENTITY, OLD, 5)
    assert decode_token(old_token, keyring(settings(soon()))) == IDENTITY
    for ended in (settings(datetime.now(UTC) - timedelta(seconds=1)), settings(None), settings(soon(), None)):
        with pytest.raises(AuthError):
            decode_token(old_token, keyring(ended))


def test_a_token_without_a_key_id_verifies_with_the_current_key_only() -> None:
    claims = jwt.decode(issue_token(IDENTITY, NEW, 5), options={"verify_signature": False})
    ring = keyring(settings(soon()))
    assert decode_token(jwt.encode(claims, NEW, "HS256"), ring) == IDENTITY  # issued before key ids
    with pytest.raises(AuthError):
        decode_token(jwt.encode(claims, OLD, "HS256"), ring)  # an old key must name itself


def test_an_unknown_or_malformed_key_id_is_refused() -> None:
    claims = jwt.decode(issue_token(IDENTITY, NEW, 5), options={"verify_signature": False})
    for kid in ("0123456789abcdef", ""):
        with pytest.raises(AuthError):
            decode_token(jwt.encode(claims, NEW, "HS256", headers={"kid": kid}), keyring(settings(soon())))


def test_refresh_tokens_and_sms_codes_rotate_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    upgrade(url)
    with Session(create_engine(url)) as session:
        old_refresh = tokens.issue_refresh(session, IDENTITY, OLD, 1)
        challenge, code = tokens.create_challenge(session, 3, 7, OLD, 5)
        session.flush()
        row = tokens.open_challenge(session, challenge)
        assert tokens.refresh_claims(old_refresh, keyring(settings(soon())))[1]
        with pytest.raises(AuthError):
            tokens.refresh_claims(old_refresh, keyring(settings(None)))
        assert not tokens.code_matches(row, code, keyring(settings(None)))  # overlap over: old MAC refused
        row.used_at = None
        assert tokens.code_matches(row, code, keyring(settings(soon())))
        fresh = LoginChallenge(tenant_id=3, user_id=7, challenge_hash="x", code_hash="y",
                               expires_at=datetime.now(UTC))
        assert not tokens.code_matches(fresh, code, keyring(settings(soon())))


def test_report_links_name_their_key_and_refuse_other_keys() -> None:
    """(A link signed with a previous key opening its file during the overlap, and not after, is in
    tests/reports/test_api.py, which has reports to open.)"""
    expires = int(time.time()) + 60
    old_sig = _signature(SigningKey.of(OLD), 5, 3, expires)
    assert old_sig.startswith(key_id(OLD) + ".")
    assert keyring(settings(soon())).find(key_id(OLD)) == SigningKey.of(OLD)
    assert Keyring.of(NEW).find(key_id(OLD)) is None
    rsettings = ReportSettings()
    for sig in (old_sig.replace(key_id(OLD), "0" * 16), old_sig.split(".", 1)[1], "nodot" * 10):
        with pytest.raises(LinkInvalid, match="not valid"):
            file_by_link(settings(soon()), rsettings, 5, 3, expires, sig)
    with pytest.raises(LinkInvalid, match="not valid"):
        file_by_link(settings(None), rsettings, 5, 3, expires, old_sig)  # overlap over
