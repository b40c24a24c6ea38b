"""What endpoints depend on: the app's context, a database session, and the caller's identity.

Everything hangs off `app.state.context`, built by `create_api(settings)`, so tests build an app
with their own settings, limiter and feed instead of patching process-wide singletons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from models.db import session_scope, tenant_session
from models.tenancy import Plan
from veles.api.metrics import Metrics
from veles.config import Settings
from veles.services.auth import AuthError, Identity, decode_token
from veles.services.live import LiveFeed
from veles.services.permissions import Permission, allowed
from veles.services.ratelimit import (
    ApiTier,
    LimiterUnavailable,
    Network,
    RateLimiter,
    client_address,
    limit_key,
)
from veles.services.sessions import check_session
from veles.services.signing_keys import keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiContext:
    """Per-app collaborators; `live_feed` is a getter because the feed must be created lazily,
    inside the server's event loop. `api_tiers` maps each plan to its API limits."""

    settings: Settings
    login_limiter: RateLimiter
    api_limiter: RateLimiter
    api_tiers: Mapping[Plan, ApiTier]
    trusted_proxies: tuple[Network, ...]
    live_feed: Callable[[], LiveFeed]
    metrics: Metrics


def context(request: Request) -> ApiContext:
    """The context of the app serving this request."""
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


def client_ip(request: Request, ctx: Context) -> str:
    """The caller's IP for limits and the audit log: the TCP peer, or what a trusted proxy says."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.get("x-forwarded-for"), ctx.trusted_proxies)


ClientIp = Annotated[str, Depends(client_ip)]


# Routes the per-IP, per-user and per-tenant API limits do not count (see `enforce_api_limits`).
UNLIMITED = frozenset({"/api/v1/billing/webhook"})


def enforce_api_limits(request: Request, ctx: Context, ip: ClientIp) -> None:
    """Every /api/v1 request counts against its client IP and, with a valid bearer token, against
    its user and its tenant at the plan's tier; over any of them is 429 with Retry-After.

    Runs for every route (an app-wide dependency), so a route cannot forget it. The header is read
    here directly rather than through HTTPBearer so health and metrics don't look authenticated in
    the OpenAPI document. If Redis is down the API stays up (logged, not limited): these limits
    share capacity fairly, while sign-in, which guards passwords, refuses with 503 instead.

    Stripe's webhook (`UNLIMITED`) is not counted: Stripe delivers from a few addresses, in bursts
    (a storm of subscription changes, its retries after an outage), and a delivery refused with 429
    is retried for days, so billing would fall behind; the endpoint authenticates each delivery by
    its signature (an HMAC over the raw body) before anything is parsed or stored.
    """
    path = request.url.path
    if not path.startswith("/api/v1/") or path in UNLIMITED:
        return
    checks = [("this IP address", limit_key("api-ip", ip), ctx.settings.api_ip_limit)]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            identity = decode_token(token.strip(), keyring(ctx.settings))
        except AuthError:
            identity = None  # the route answers 401; the IP counter still counts the attempt
        if identity is not None:
            tier = ctx.api_tiers[identity.plan]
            checks += [
                (f"your broker ({identity.plan.value} plan)",
                 limit_key("api-tenant", str(identity.tenant_id)), tier.per_tenant),
                ("your user", limit_key("api-user", str(identity.user_id)), tier.per_user),
            ]
    try:
        decisions = ctx.api_limiter.hit_all([(key, limit) for _, key, limit in checks])
    except LimiterUnavailable as exc:
        log.warning("API rate limits not applied: %s", exc)
        return
    refused = [(who, limit, d) for (who, _, limit), d in zip(checks, decisions, strict=True) if not d.allowed]
    if refused:
        retry_after = max(d.retry_after for _, _, d in refused)
        who, limit, _ = refused[0]
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many requests: {who} may make {limit} a minute; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


def platform_session(ctx: Context) -> Iterator[Session]:
    """A platform session (sees every tenant): sign-in starts from an e-mail, not a tenant.
    Routes take it as `veles.api.db.PlatformUnit`, which commits before the response leaves."""
    with session_scope(ctx.settings.database_url) as session:
        yield session


# auto_error=False: a missing header gets our 401 with WWW-Authenticate, not FastAPI's generic one.
_bearer = HTTPBearer(auto_error=False)


def current_identity(
    ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Identity:
    """The identity in the `Authorization: Bearer` token; 401 when absent, expired, forged, or
    issued before the user's sessions were ended (deactivated, role or password changed): the
    token's version is compared with the user's current one, cached in Redis, on every request."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not signed in: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        identity = decode_token(credentials.credentials, keyring(ctx.settings))
        return check_session(ctx.settings, identity)
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
    PostgreSQL), so a route that forgets a `tenant_id` filter still cannot leak another tenant's rows.
    Routes take it as `veles.api.db.TenantUnit`, which commits before the response leaves."""
    with tenant_session(ctx.settings.database_url, identity.tenant_id) as session:
        yield session


TenantDb = Annotated[Session, Depends(tenant_db)]
