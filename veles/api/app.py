"""The FastAPI app factory.

Reflex mounts its own backend under this app (`rx.App(api_transformer=create_api())`), so these
routes answer first and everything else falls through to Reflex.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from veles.api import accounts, alerts, auth_routes, book, calculator, connections, health, history
from veles.api.deps import ApiContext
from veles.api.errors import install_error_handlers
from veles.api.metrics import Metrics, MetricsMiddleware
from veles.config import Settings, get_settings
from veles.services.live import LiveFeed, get_live_feed
from veles.services.ratelimit import RateLimiter, login_limiter


def create_api(
    settings: Settings | None = None,
    *,
    live_feed: Callable[[], LiveFeed] = get_live_feed,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the API for `settings` (the process settings by default). Connects to nothing:
    Redis, the database and Ray are reached on first use."""
    settings = settings or get_settings()
    metrics = Metrics()
    app = FastAPI(title="Veles API", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None)
    app.state.context = ApiContext(
        settings=settings,
        login_limiter=limiter or login_limiter(settings),
        live_feed=live_feed,
        metrics=metrics,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(health.router)
    app.include_router(auth_routes.router)
    app.include_router(book.router)
    install_error_handlers(app)
    for data_router in (connections, accounts, alerts, history, calculator):
        app.include_router(data_router.router)
    return app
