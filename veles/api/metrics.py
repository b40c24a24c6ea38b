"""Prometheus metrics: request count and latency per route and status, in-flight requests, and
the last readiness result of each dependency.

Each app owns its registry, so several apps in one process (tests) do not collide on metric names.
Routes are labelled by their template (`/api/v1/book`, or a Reflex backend route such as `/ping`),
never the raw path, so label cardinality stays bounded; a path no route matched is `other`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OTHER_ROUTE = "other"


class Metrics:
    """The metrics of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "veles_http_requests", "HTTP requests served.", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "veles_http_request_duration_seconds", "Time to serve an HTTP request.", ["method", "route"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "veles_http_requests_in_flight", "HTTP requests being served now.", registry=self.registry
        )
        self.dependency_up = Gauge(
            "veles_dependency_up", "1 if the dependency answered the last readiness check.", ["dependency"],
            registry=self.registry,
        )
        self.dependency_latency = Gauge(
            "veles_dependency_latency_seconds", "Latency of the dependency in the last readiness check.",
            ["dependency"], registry=self.registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware (no response buffering, so streamed Reflex responses pass untouched)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it under its route template and response status."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before starting a response

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        self._metrics.in_flight.inc()
        try:
            await self._app(scope, receive, record_status)
        finally:
            self._metrics.in_flight.dec()
            # The router that matched stores its route in the (shared) scope.
            route = getattr(scope.get("route"), "path", OTHER_ROUTE)
            method = scope["method"]
            self._metrics.requests.labels(method, route, str(status)).inc()
            self._metrics.latency.labels(method, route).observe(time.perf_counter() - start)
