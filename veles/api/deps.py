"""What endpoints depend on: the app's context, a database session, and the caller's identity.

Everything hangs off `app.state.context`, built by `create_api(settings)`, so tests build an app
with their own settings, limiter and feed instead of patching process-wide singletons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from models.db import session_scope, tenant_session
from veles.api.metrics import Metrics
from veles.config import Settings
from veles.services.auth import AuthError, Identity, decode_token
from veles.services.live import LiveFeed
from veles.services.permissions import Permission, allowed
from veles.services.ratelimit import RateLimiter


@dataclass(frozen=True)
class ApiContext:
    """Per-app collaborators; `live_feed` is a getter because the feed must be created lazily,
    inside the server's event loop."""

    settings: Settings
    login_limiter: RateLimiter
    live_feed: Callable[[], LiveFeed]
    metrics: Metrics


def context(request: Request) -> ApiContext:
    """The context of the app serving this request."""
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


def platform_session(ctx: Context) -> Iterator[Session]:
    """A platform session (sees every tenant): sign-in starts from an e-mail, not a tenant."""
    with session_scope(ctx.settings.database_url) as session:
        yield session


# auto_error=False: a missing header gets our 401 with WWW-Authenticate, not FastAPI's generic one.
_bearer = HTTPBearer(auto_error=False)


def current_identity(
    ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Identity:
    """The identity in the `Authorization: Bearer` token; 401 when absent, expired or forged."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not signed in: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return decode_token(credentials.credentials, ctx.settings.secret_key.get_secret_value())
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc


CurrentIdentity = Annotated[Identity, Depends(current_identity)]


def requires(permission: Permission) -> Callable[[Identity], Identity]:
    """A dependency that lets the caller through only if their role holds `permission` (else 403).

    Use as `identity: Annotated[Identity, Depends(requires(Permission.ACK_ALERTS))]`; the 401
    checks of `current_identity` run first, so a missing token is 401 and a weak role 403.
    """

    def check(identity: CurrentIdentity) -> Identity:
        if not allowed(identity.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Your role ({identity.role.value}) may not {permission.value.replace('_', ' ')}.",
            )
        return identity

    return check


def tenant_db(ctx: Context, identity: CurrentIdentity) -> Iterator[Session]:
    """A session confined to the caller's tenant by row-level security (as `veles_app` on
    PostgreSQL), so a route that forgets a `tenant_id` filter still cannot leak another tenant's rows."""
    with tenant_session(ctx.settings.database_url, identity.tenant_id) as session:
        yield session


TenantDb = Annotated[Session, Depends(tenant_db)]
