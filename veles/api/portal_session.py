"""The portal's refresh token, kept where no script and no server-side tab state can read it.

Reflex keeps each tab's state (every cookie it manages included) on the server, in Redis when
several workers share it, and its cookies are set by JavaScript, so they cannot be HttpOnly. A
refresh token is a 14-day credential, so the portal keeps none in its state: it lives only in the
HttpOnly cookie `veles_refresh`, set by these routes, scoped to their path (`PATH`) so the
browser sends it nowhere else (not even on the portal's `/_event` socket, whose handshake headers
Reflex would otherwise store with the tab's state), `SameSite=Strict`, and `Secure` when the
portal is served over TLS. The tab's state keeps only the short-lived access token.

- `POST /api/v1/auth/portal/session` `{"refresh_token"}`: the sign-in page hands over the refresh
  token of a sign-in it just made; it is spent at once (rotated), so the copy that passed through
  the page's script is worthless a moment later, and the new one goes into the cookie.
- `POST /api/v1/auth/portal/refresh`: the page guard's renewal of an expired or ended access
  token: rotates the cookie's token (reuse detection as for the API) and sets the new access
  token in `veles_token`, the cookie the portal's state reads its token from.
- `POST /api/v1/auth/portal/logout`: ends the sign-in (every token of its family; the user's access
  tokens stop at once) and clears both cookies.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from veles.api.db import PlatformUnit
from veles.api.deps import ClientIp, Context
from veles.config import Settings
from veles.services.auth import AuthError, Tokens, logout, refresh

PATH = "/api/v1/auth/portal"
REFRESH_COOKIE = "veles_refresh"
TOKEN_COOKIE = "veles_token"  # noqa: S105 (a cookie's name) what `veles_ui.state.session.SessionState.token` reads and writes

router = APIRouter(prefix=PATH, tags=["auth"])
_REFUSED: dict[int | str, dict[str, Any]] = {401: {"description": "No live sign-in: sign in again"}}


class Handover(BaseModel):
    """The refresh token of a sign-in the portal just made."""

    refresh_token: str = Field(min_length=16, max_length=4096)


def over_tls(settings: Settings, request: Request | None = None) -> bool:
    """Whether cookies must be `Secure`: the portal's public address is https, or this request
    came over TLS."""
    return (settings.public_url or "").startswith("https://") or (
        request is not None and request.url.scheme == "https")


def _keep(response: Response, settings: Settings, request: Request, tokens: Tokens) -> None:
    secure = over_tls(settings, request)
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, max_age=tokens.refresh_expires_in, path=PATH,
                        secure=secure, httponly=True, samesite="strict")
    # gone with the token inside (as the portal's own cookie), so no dead bearer token stays behind
    response.set_cookie(TOKEN_COOKIE, tokens.access_token, max_age=tokens.expires_in, path="/",
                        secure=secure, httponly=False, samesite="strict")


def _forget(response: Response, settings: Settings, request: Request) -> None:
    secure = over_tls(settings, request)
    response.delete_cookie(REFRESH_COOKIE, path=PATH, secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(TOKEN_COOKIE, path="/", secure=secure, httponly=False, samesite="strict")


def _refused(exc: AuthError, settings: Settings, request: Request) -> HTTPException:
    secure = "; Secure" if over_tls(settings, request) else ""
    forget = f"{REFRESH_COOKIE}=; Max-Age=0; Path={PATH}; HttpOnly; SameSite=strict{secure}"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"Set-Cookie": forget})


@router.post("/session", status_code=status.HTTP_204_NO_CONTENT, responses=_REFUSED)
def hand_over(body: Handover, request: Request, ctx: Context, ip: ClientIp, db: PlatformUnit) -> Response:
    """Spend a sign-in's refresh token and keep its successor in the HttpOnly cookie."""
    try:
        tokens = refresh(db, ctx.settings, body.refresh_token, ip=ip)
    except AuthError as exc:
        raise _refused(exc, ctx.settings, request) from exc
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _keep(response, ctx.settings, request, tokens)
    return response


@router.post("/refresh", status_code=status.HTTP_204_NO_CONTENT, responses=_REFUSED)
def renew(request: Request, ctx: Context, ip: ClientIp, db: PlatformUnit) -> Response:
    """A new access token (in `veles_token`) for the sign-in in the cookie, which is rotated."""
    token = request.cookies.get(REFRESH_COOKIE, "")
    try:
        if not token:
            raise AuthError("Not signed in.")
        tokens = refresh(db, ctx.settings, token, ip=ip)
    except AuthError as exc:
        raise _refused(exc, ctx.settings, request) from exc
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _keep(response, ctx.settings, request, tokens)
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, ctx: Context, ip: ClientIp, db: PlatformUnit) -> Response:
    """End the cookie's sign-in and clear both cookies; without one (or an ended one) too."""
    token = request.cookies.get(REFRESH_COOKIE, "")
    if token:
        with suppress(AuthError):  # not ours or garbled: nothing to end, the cookies go anyway
            logout(db, ctx.settings, token, ip=ip)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _forget(response, ctx.settings, request)
    return response
