"""Operational endpoints: liveness, readiness and Prometheus metrics (the app's and the engine's).

Liveness says only that the process serves HTTP (restart me if not). Readiness checks what a
request needs — the database, Redis when configured, Ray when this process uses it — so a load
balancer stops sending traffic to a process that would only answer errors, and, where the
engine's followers report, that no tenant's alert delivery is down for good.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from typing import Literal
from urllib.parse import urlsplit

import ray
import redis
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import text

from models.db import get_engine
from veles.api.deps import Context
from veles.config import Settings
from veles.services.delivery_consumer import DeliveryCollector, delivery_problems, read_delivery_status
from veles.services.engine_metrics import EngineCollector, read_engine_stats
from veles.services.report_metrics import ReportQueueCollector, read_report_queue
from veles.services.web_sessions import session_counts

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT = 2.0  # seconds a dependency may take before it counts as down


class Check(BaseModel):
    """One dependency's answer."""

    status: Literal["ok", "error"]
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    """All checks; `failed` names the dependencies that did not answer."""

    status: Literal["ok", "error"]
    checks: dict[str, Check]
    failed: list[str]


def _database(settings: Settings) -> None:
    with get_engine(settings.database_url).connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def _ray(address: str | None) -> None:
    """Ask the connected cluster for a live node; without a connection, probe RAY_ADDRESS's port
    (a health check must not join, let alone start, a cluster)."""
    if ray.is_initialized():
        if not any(node.get("Alive") for node in ray.nodes()):
            raise RuntimeError("no live Ray node")
        return
    assert address is not None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if parts.hostname is None or parts.port is None:
        raise RuntimeError(f"RAY_ADDRESS {address!r} has no host:port to probe")
    with socket.create_connection((parts.hostname, parts.port), timeout=CHECK_TIMEOUT):
        pass


async def _run(probe: Callable[[], None]) -> Check:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(probe), CHECK_TIMEOUT + 1)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Check(status="error", latency_ms=_ms(start), error=error)
    return Check(status="ok", latency_ms=_ms(start))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def _delivery(settings: Settings) -> Check | None:
    """The alert delivery consumers, when this deployment's followers report (None otherwise): an
    error while any tenant's consumer is down for good, since alerts would then be lost."""
    start = time.perf_counter()
    rows = await read_delivery_status(settings)
    if rows is None:
        return None
    problems = delivery_problems(rows)
    if problems:
        return Check(status="error", latency_ms=_ms(start), error="; ".join(problems)[:1000])
    return Check(status="ok", latency_ms=_ms(start))


@router.get("/api/health")
def health() -> dict[str, str]:
    """Liveness: the process answers HTTP."""
    return {"status": "ok"}


@router.get("/api/health/ready", responses={503: {"model": Readiness}})
async def ready(ctx: Context, response: Response) -> Readiness:
    """Readiness: 200 when every configured dependency answers, else 503 naming those that did not."""
    settings = ctx.settings
    probes: dict[str, Callable[[], None]] = {"database": lambda: _database(settings)}
    if settings.redis_url:
        redis_url = settings.redis_url
        probes["redis"] = lambda: _redis(redis_url)
    if ray.is_initialized() or settings.ray_address:
        probes["ray"] = lambda: _ray(settings.ray_address)
    results = await asyncio.gather(*(_run(probe) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    delivery = await _delivery(settings)
    if delivery is not None:
        checks["alert_delivery"] = delivery
    for name, check in checks.items():
        ctx.metrics.dependency_up.labels(name).set(1 if check.status == "ok" else 0)
        ctx.metrics.dependency_latency.labels(name).set(check.latency_ms / 1000)
    failed = [name for name, check in checks.items() if check.status != "ok"]
    if failed:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="error" if failed else "ok", checks=checks, failed=failed)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_caller(request: Request, ctx: Context) -> None:
    """/metrics is not public: with METRICS_TOKEN set it needs `Authorization: Bearer <token>`;
    without one only a caller on this host (loopback, and not relayed by a proxy) is answered.
    The figures name tenants by id only, but their volume and timing are still nobody's business."""
    token = ctx.settings.metrics_token
    if token is not None and token.get_secret_value():  # an empty METRICS_TOKEN= counts as unset
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                "A valid METRICS_TOKEN bearer token is required.",
                                headers={"WWW-Authenticate": "Bearer"})
        return
    peer = request.client.host if request.client else ""
    relayed = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if not _loopback(peer) or relayed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Metrics are served to this host only; "
                            "set METRICS_TOKEN to scrape from elsewhere.")


class SessionCollector(Collector):
    """Sessions this web process serves now: portal tabs (Reflex's event sockets) and
    integrations sockets; what a scale-out decision reads beside `veles_pushes`."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        """One sample per kind of session."""
        family = GaugeMetricFamily("veles_web_sessions", "Open sessions of this web process, by kind.",
                                   labels=["kind"])
        for kind, n in sorted(self._counts.items()):
            family.add_metric([kind], n)
        yield family


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_caller)])
async def metrics(request: Request, ctx: Context) -> Response:
    """Prometheus text exposition of this app's registry, then the engine's metrics (lag, live
    actors, restarts and alerts per tenant; this process's pushes), read without blocking the
    event loop (`veles.services.engine_metrics`), this process's open sessions, and the report
    workers' queue (`veles.services.report_metrics`)."""
    counts = session_counts()
    namespace = getattr(request.app.state, "sio_namespace", None)
    if namespace is not None:
        counts["integrations"] = namespace.socket_count()
    engine = CollectorRegistry()
    engine.register(SessionCollector(counts))
    engine.register(EngineCollector(await read_engine_stats(ctx.settings)))
    engine.register(DeliveryCollector(await read_delivery_status(ctx.settings)))
    engine.register(ReportQueueCollector(await read_report_queue(ctx.settings)))
    body = generate_latest(ctx.metrics.registry) + generate_latest(engine)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
