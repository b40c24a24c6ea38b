"""The FastAPI app factory.

Reflex mounts its own backend under this app (`rx.App(api_transformer=create_api())`), so these
routes answer first and everything else falls through to Reflex.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import Depends, FastAPI

from models.tenancy import Plan
from veles.api import (
    accounts,
    alerts,
    auth_routes,
    book,
    calculator,
    connections,
    flow,
    health,
    history,
    portal_session,
)
from veles.api import report_schedules as schedule_routes
from veles.api import reports as report_routes
from veles.api import stress as stress_routes
from veles.api import var as var_routes
from veles.api.bodylimit import BodyLimitMiddleware
from veles.api.deps import ApiContext, enforce_api_limits
from veles.api.errors import install_error_handlers
from veles.api.headers import SecurityHeadersMiddleware
from veles.api.invitations import router as invitations_router
from veles.api.metrics import Metrics, MetricsMiddleware
from veles.api.preferences import router as preferences_router
from veles.api.read_only import refuse_read_only
from veles.api.realtime import mount_socketio
from veles.api.responses import declare_responses
from veles.api.users import router as users_router
from veles.billing.routes import router as billing_router
from veles.config import Settings, get_settings
from veles.services.live import LiveFeed, get_live_feed
from veles.services.ratelimit import (
    API_TIERS,
    ApiTier,
    RateLimiter,
    api_limiter,
    login_limiter,
    parse_trusted_proxies,
)


def create_api(
    settings: Settings | None = None,
    *,
    live_feed: Callable[[], LiveFeed] = get_live_feed,
    limiter: RateLimiter | None = None,
    api_tiers: Mapping[Plan, ApiTier] | None = None,
) -> FastAPI:
    """Build the API for `settings` (the process settings by default). Connects to nothing:
    Redis, the database and Ray are reached on first use. Every /api/v1 route is rate limited
    (`enforce_api_limits`); `api_tiers` overrides the plans' limits (tests use small ones)."""
    settings = settings or get_settings()
    metrics = Metrics()
    app = FastAPI(title="Veles API", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None, dependencies=[Depends(enforce_api_limits), Depends(refuse_read_only)])
    app.state.context = ApiContext(
        settings=settings,
        login_limiter=limiter or login_limiter(settings),
        api_limiter=api_limiter(settings),
        api_tiers=api_tiers or API_TIERS,
        trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        live_feed=live_feed,
        metrics=metrics,
    )
    # Last added runs first: headers on every answer (a 413 too), then timing, then the body limit.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings,
                       trusted_proxies=app.state.context.trusted_proxies)
    routers = [health.router, auth_routes.router, portal_session.router, users_router, invitations_router,
               preferences_router, billing_router,
               book.router, report_routes.router, schedule_routes.router, stress_routes.router,
               var_routes.router,
               *(module.router for module in (connections, accounts, alerts, history, calculator, flow))]
    declare_responses(routers)  # every answer in the OpenAPI document, before it is built
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    mount_socketio(app)
    return app
