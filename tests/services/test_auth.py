"""Passwords and tokens: what is accepted and, above all, what is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from models.tenancy import Role
from veles.services.auth import AuthError, Identity, decode_token, hash_password, issue_token, verify_password

SECRET = "test-secret-0123456789-0123456789-abcdef"
IDENTITY = Identity(user_id=7, tenant_id=3, role=Role.RISK_MANAGER, email="rm@broker.test")


def test_password_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("s3cret!"), hash_password("s3cret!")
    assert first != second
    assert first.startswith("$argon2id$")
    assert verify_password(first, "s3cret!")
    assert not verify_password(first, "s3cret")
    assert not verify_password("not-a-hash", "s3cret!")


def test_token_round_trip() -> None:
    assert decode_token(issue_token(IDENTITY, SECRET, 5), SECRET) == IDENTITY


def test_expired_token_is_refused() -> None:
    token = jwt.encode({"sub": "7", "tenant_id": 3, "role": "viewer", "exp": int(time.time()) - 1},
                       SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="expired"):
        decode_token(token, SECRET)


def test_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(issue_token(IDENTITY, "another-secret-0123456789-0123456789", 5), SECRET)


def test_tampered_claims_are_refused() -> None:
    header, payload, signature = issue_token(IDENTITY, SECRET, 5).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["tenant_id"] = 4  # try to read another broker's book
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(f"{header}.{forged}.{signature}", SECRET)


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"sub": "7", "tenant_id": 3, "role": "viewer", "exp": int(time.time()) + 60},
                          key=None, algorithm="none")
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(unsigned, SECRET)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c"])
def test_garbage_token_is_refused(garbage: str) -> None:
    with pytest.raises(AuthError):
        decode_token(garbage, SECRET)
