"""Access and refresh tokens: what is accepted and, above all, what is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from models.tenancy import Plan, Role
from veles.services.tokens import AuthError, Identity, decode_token, issue_token, refresh_claims

SECRET = "test-secret-0123456789-0123456789-abcdef"
IDENTITY = Identity(user_id=7, tenant_id=3, role=Role.RISK_MANAGER, email="rm@broker.test",
                    plan=Plan.PROFESSIONAL)


def _forge(token: str, **changes: object) -> str:
    """The token with some claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_access_token_round_trip_carries_tenant_role_and_plan() -> None:
    assert decode_token(issue_token(IDENTITY, SECRET, 5), SECRET) == IDENTITY


def test_expired_token_is_refused() -> None:
    with pytest.raises(AuthError, match="expired"):
        decode_token(issue_token(IDENTITY, SECRET, -1), SECRET)


def test_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(issue_token(IDENTITY, "another-secret-0123456789-0123456789", 5), SECRET)


@pytest.mark.parametrize("change", [{"tenant_id": 4}, {"role": "platform_admin"}, {"plan": "enterprise"},
                                    {"sub": "8"}])
def test_tampered_claims_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(_forge(issue_token(IDENTITY, SECRET, 5), **change), SECRET)


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"typ": "access", "sub": "7", "tenant_id": 3, "role": "viewer",
                           "exp": int(time.time()) + 60}, key="", algorithm="none")
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(unsigned, SECRET)


def test_a_token_without_a_type_is_refused() -> None:
    """Tokens made before types existed (or by anyone else) cannot pass as access tokens."""
    untyped = jwt.encode({"sub": "7", "tenant_id": 3, "role": "viewer", "exp": int(time.time()) + 60},
                         SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(untyped, SECRET)


def test_access_and_refresh_tokens_cannot_stand_in_for_each_other() -> None:
    refresh_typed = jwt.encode({"typ": "refresh", "fam": "f", "sub": "7", "tenant_id": 3, "role": "viewer",
                                "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert refresh_claims(refresh_typed, SECRET)[1] == "f"
    with pytest.raises(AuthError, match="Invalid"):
        decode_token(refresh_typed, SECRET)  # a refresh token is not an access token
    with pytest.raises(AuthError, match="Invalid"):
        refresh_claims(issue_token(IDENTITY, SECRET, 5), SECRET)  # nor the reverse


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_token_is_refused(garbage: str) -> None:
    with pytest.raises(AuthError):
        decode_token(garbage, SECRET)
    with pytest.raises(AuthError):
        refresh_claims(garbage, SECRET)
