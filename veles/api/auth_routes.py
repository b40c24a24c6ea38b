"""Sign-in for API clients and who the token speaks for.

`POST /api/v1/auth/token` (e-mail + password) answers with a token pair, or with an SMS challenge
that `POST /api/v1/auth/verify` exchanges for the pair; `/auth/refresh` rotates the pair and
`/auth/logout` ends the sign-in. The flow itself is `veles.services.auth`, shared with the portal.
`/auth/password-reset` e-mails a reset link and `/auth/password-reset/confirm` sets the new password
(`veles.services.password_reset`, shared with the portal's /forgot and /reset pages).

Sign-in and code checks are rate limited per client IP and per e-mail before the password is
checked, so neither guessing one account's password from many IPs nor spraying many accounts from
one IP gets more than `LOGIN_LIMIT` tries a minute, and the Argon2 work an attacker can cause is
bounded too; the portal's form counts on the same counters. Past a few failures for one e-mail
from one IP, that pair waits longer after each (`veles.services.throttle`): 429, never a lockout. When
Redis (the shared counter) is down these answer 503 rather than going unlimited.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Response, status
from pydantic import BaseModel, Field

from veles.api.db import PlatformUnit
from veles.api.deps import ClientIp, Context, CurrentIdentity
from veles.services.auth import (
    AuthError,
    Challenge,
    CodeNotSent,
    PasswordChangeRequired,
    Throttled,
    Tokens,
    logout,
    refresh,
    sign_in,
    verify_code,
)
from veles.services.password_reset import (
    ANSWER,
    RESET_IP_LIMIT,
    RESET_LIMIT,
    ResetLinkInvalid,
    complete_reset,
    request_reset,
    send_reset_mail,
)
from veles.services.ratelimit import LimiterUnavailable, TooManyAttempts, check_attempts

router = APIRouter(prefix="/api/v1", tags=["auth"])
PlatformDb = PlatformUnit  # committed before the response leaves (veles.api.db)


class Credentials(BaseModel):
    """A sign-in request."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    new_password: str | None = Field(
        default=None, max_length=1024,
        description="Only when the password is a temporary one (answer 403): the password to replace it.",
    )


class RefreshRequest(BaseModel):
    """A refresh token, to rotate or to end."""

    refresh_token: str = Field(min_length=16, max_length=4096)


class CodeRequest(BaseModel):
    """The challenge from sign-in and the six-digit code from the SMS."""

    challenge: str = Field(min_length=16, max_length=256)
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="The six digits from the SMS.")


class ResetRequest(BaseModel):
    """The address to send a password-reset link to."""

    email: str = Field(min_length=3, max_length=254)


class ResetConfirm(BaseModel):
    """The token from the reset link and the new password (checked like sign-up's)."""

    token: str = Field(min_length=16, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class ResetAccepted(BaseModel):
    """The same answer for every address, so the form cannot tell which have an account."""

    detail: str = ANSWER


class ResetDone(BaseModel):
    """The password is changed and every earlier sign-in ended: sign in with the new one."""

    email: str


class TokenPair(BaseModel):
    """OAuth2-style bearer tokens: a short-lived access token and a single-use refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(description="Single use: /auth/refresh returns the next one.")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")


class SmsChallenge(BaseModel):
    """The password was right; a code was sent by SMS. POST it with the challenge to /auth/verify."""

    challenge: str
    expires_in: int = Field(description="Seconds the code stays valid.")
    phone_hint: str = Field(description="The end of the number the code went to.")
    verify_url: str = "/api/v1/auth/verify"


class Me(BaseModel):
    """The signed-in identity."""

    user_id: int
    tenant_id: int
    role: str
    email: str


_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong credentials or token"},
    403: {"description": "The password is temporary: send it again with `new_password`"},
    422: {"description": "The request, or the `new_password` chosen, is not acceptable"},
    429: {"description": "Too many attempts (rate limit, or this e-mail's failures from this IP)"},
    503: {"description": "Rate-limit store down, or the SMS code could not be sent"},
}


def enforce_login_limit(ctx: Context, ip: str, email: str | None, *, kind: str = "login",
                         ip_limit: int | None = None, email_limit: int | None = None,
                         what: str = "sign-in") -> None:
    """429 with Retry-After when this IP or this e-mail has used up its attempts for the window;
    503 when the counters cannot be reached (an unlimited sign-in would open the door to guessing).
    The check itself is `veles.services.ratelimit.check_attempts`, which the portal calls too."""
    try:
        check_attempts(ctx.login_limiter, ip, email, kind=kind, ip_limit=ip_limit, email_limit=email_limit,
                       what=what)
    except LimiterUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.user_message,
                            headers={"Retry-After": "5"}) from exc
    except TooManyAttempts as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from exc


def _refusal(exc: AuthError) -> HTTPException:
    """429 with Retry-After while the (e-mail, IP) pair must wait, 403 when a temporary password
    must be replaced, 503 when the SMS code could not go out, else 401."""
    if isinstance(exc, Throttled):
        return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                             headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, PasswordChangeRequired):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))
    if isinstance(exc, CodeNotSent):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "30"})
    return HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"})


def _pair(tokens: Tokens) -> TokenPair:
    return TokenPair(access_token=tokens.access_token, expires_in=tokens.expires_in,
                     refresh_token=tokens.refresh_token, refresh_expires_in=tokens.refresh_expires_in)


@router.post("/auth/token", responses=_REFUSED)
def token(credentials: Credentials, ctx: Context, ip: ClientIp, db: PlatformDb) -> TokenPair | SmsChallenge:
    """Exchange an e-mail and password for tokens, or for an SMS challenge (two-factor users)."""
    enforce_login_limit(ctx, ip, credentials.email)
    try:
        result = sign_in(db, ctx.settings, credentials.email, credentials.password, ip=ip,
                         new_password=credentials.new_password)
    except AuthError as exc:
        raise _refusal(exc) from exc
    if isinstance(result, Challenge):
        return SmsChallenge(challenge=result.challenge, expires_in=result.expires_in,
                            phone_hint=result.phone_hint)
    return _pair(result)


@router.post("/auth/verify", responses=_REFUSED)
def verify(request: CodeRequest, ctx: Context, ip: ClientIp, db: PlatformDb) -> TokenPair:
    """Exchange a sign-in challenge and its SMS code for tokens; wrong codes count toward the throttle."""
    enforce_login_limit(ctx, ip, None)
    try:
        return _pair(verify_code(db, ctx.settings, request.challenge, request.code, ip=ip))
    except AuthError as exc:
        raise _refusal(exc) from exc


@router.post("/auth/refresh", responses=_REFUSED)
def refresh_tokens(request: RefreshRequest, ctx: Context, ip: ClientIp, db: PlatformDb) -> TokenPair:
    """A new token pair for a refresh token, which is spent; presenting a spent one ends the sign-in."""
    try:
        return _pair(refresh(db, ctx.settings, request.refresh_token, ip=ip))
    except AuthError as exc:
        raise _refusal(exc) from exc


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=_REFUSED)
def sign_out(request: RefreshRequest, ctx: Context, ip: ClientIp, db: PlatformDb) -> Response:
    """End the sign-in the refresh token belongs to (all its tokens); signing out twice is fine."""
    try:
        logout(db, ctx.settings, request.refresh_token, ip=ip)
    except AuthError as exc:
        raise _refusal(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/password-reset", status_code=status.HTTP_202_ACCEPTED,
             responses={429: _REFUSED[429], 503: {"description": "Rate-limit store down"}})
def password_reset(request: ResetRequest, background: BackgroundTasks, ctx: Context, ip: ClientIp,
                   db: PlatformDb) -> ResetAccepted:
    """E-mail a single-use link to choose a new password. The answer is the same whether or not
    the address has an account, and the e-mail goes out after it (same timing either way)."""
    enforce_login_limit(ctx, ip, request.email.strip().lower(), kind="reset", ip_limit=RESET_IP_LIMIT,
                         email_limit=RESET_LIMIT, what="password reset")
    mail = request_reset(db, ctx.settings, request.email, ip=ip)
    if mail is not None:
        background.add_task(send_reset_mail, ctx.settings, mail)
    return ResetAccepted()


@router.post("/auth/password-reset/confirm",
             responses={400: {"description": "The link is not valid, expired or already used"},
                        429: _REFUSED[429], 503: {"description": "Rate-limit store down"}})
def password_reset_confirm(request: ResetConfirm, ctx: Context, ip: ClientIp, db: PlatformDb) -> ResetDone:
    """Set a new password through the e-mailed link's token; every earlier sign-in of the user
    ends. A too-short or guessable password is a 422 naming `password` (the link stays usable)."""
    enforce_login_limit(ctx, ip, None, kind="reset", ip_limit=RESET_IP_LIMIT, what="password reset")
    try:
        return ResetDone(email=complete_reset(db, request.token, request.password, ip=ip))
    except ResetLinkInvalid as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc


@router.get("/me", responses={401: {"description": "Missing, expired or invalid token"}})
def me(identity: CurrentIdentity) -> Me:
    """The identity the bearer token speaks for."""
    return Me(
        user_id=identity.user_id, tenant_id=identity.tenant_id, role=identity.role.value, email=identity.email
    )
