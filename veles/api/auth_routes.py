"""Sign-in for API clients (`POST /api/v1/auth/token`) and who the token speaks for (`/api/v1/me`).

Sign-in is rate limited per client IP and per e-mail before the password is checked, so neither
guessing one account's password from many IPs nor spraying many accounts from one IP gets more
than `LOGIN_LIMIT` tries a minute — and the Argon2 work an attacker can cause is bounded too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from veles.api.deps import Context, CurrentIdentity, platform_session
from veles.services.auth import AuthError, authenticate, issue_token
from veles.services.ratelimit import limit_key

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Credentials(BaseModel):
    """A sign-in request."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class Token(BaseModel):
    """An OAuth2-style bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")


class Me(BaseModel):
    """The signed-in identity."""

    user_id: int
    tenant_id: int
    role: str
    email: str


def _enforce_login_limit(ctx: Context, request: Request, email: str) -> None:
    """429 with Retry-After when this IP or this e-mail has used up its attempts for the window.

    Both counters are hit on every attempt so one cannot be drained while the other is checked.
    The IP is the TCP peer: X-Forwarded-For is spoofable unless a trusted proxy sets it.
    """
    client_ip = request.client.host if request.client else "unknown"
    decisions = [
        ctx.login_limiter.hit(limit_key("login-ip", client_ip)),
        ctx.login_limiter.hit(limit_key("login-email", email)),
    ]
    refused = [d for d in decisions if not d.allowed]
    if refused:
        retry_after = max(d.retry_after for d in refused)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many sign-in attempts; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


@router.post(
    "/auth/token",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Too many attempts"}},
)
def token(
    credentials: Credentials,
    ctx: Context,
    request: Request,
    db: Annotated[Session, Depends(platform_session)],
) -> Token:
    """Exchange an e-mail and password for an access token."""
    _enforce_login_limit(ctx, request, credentials.email)
    try:
        identity = authenticate(db, credentials.email, credentials.password)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    minutes = ctx.settings.access_token_minutes
    return Token(
        access_token=issue_token(identity, ctx.settings.secret_key.get_secret_value(), minutes),
        expires_in=minutes * 60,
    )


@router.get("/me", responses={401: {"description": "Missing, expired or invalid token"}})
def me(identity: CurrentIdentity) -> Me:
    """The identity the bearer token speaks for."""
    return Me(
        user_id=identity.user_id, tenant_id=identity.tenant_id, role=identity.role.value, email=identity.email
    )
