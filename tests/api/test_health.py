"""Liveness, readiness against real and dead dependencies, and the Prometheus exposition."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from veles.api import create_api
from veles.config import Settings

from .conftest import settings_for

LOCAL = ("127.0.0.1", 50_000)  # /metrics answers this host only (or a METRICS_TOKEN bearer)


@pytest.fixture
def local(app: FastAPI) -> Iterator[TestClient]:
    """A client calling from this host's loopback address."""
    with TestClient(app, client=LOCAL) as test_client:
        yield test_client


def test_liveness(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_checks_database_and_redis(client: TestClient) -> None:
    response = client.get("/api/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    for name in ("database", "redis"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0


def test_ready_names_a_dead_redis(settings: Settings) -> None:
    dead = settings_for(settings.database_url, "redis://127.0.0.1:1/0")
    with TestClient(create_api(dead)) as client:
        response = client.get("/api/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert "redis" in body["failed"]
    assert "database" not in body["failed"]
    assert body["checks"]["redis"]["error"]


def test_ready_names_a_dead_database(settings: Settings) -> None:
    dead = settings_for("postgresql+psycopg://nobody@127.0.0.1:1/none", settings.redis_url)
    with TestClient(create_api(dead)) as client:
        response = client.get("/api/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


def test_metrics_count_requests_per_route_and_status(local: TestClient) -> None:
    local.get("/api/health")
    local.get("/api/health")
    local.get("/api/v1/me")
    text = local.get("/metrics").text
    assert 'veles_http_requests_total{method="GET",route="/api/health",status="200"} 2.0' in text
    assert 'veles_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1.0' in text
    assert 'veles_http_request_duration_seconds_count{method="GET",route="/api/health"} 2.0' in text
    assert "veles_http_requests_in_flight" in text


def test_metrics_report_the_last_readiness_check(local: TestClient) -> None:
    local.get("/api/health/ready")
    text = local.get("/metrics").text
    assert 'veles_dependency_up{dependency="database"} 1.0' in text
    assert 'veles_dependency_up{dependency="redis"} 1.0' in text


def test_metrics_answer_without_the_engine_and_say_so(settings: Settings) -> None:
    """A scrape never fails or hangs on the engine: Redis away means `veles_engine_reachable 0`."""
    dead = settings_for(settings.database_url, "redis://127.0.0.1:1/0")
    with TestClient(create_api(dead), client=LOCAL) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert "veles_engine_reachable 0.0" in response.text
    assert 'veles_pushes_total{channel="browser"}' in response.text


def test_metrics_read_the_engines_stats_from_redis(local: TestClient) -> None:
    text = local.get("/metrics").text  # the test Redis holds no engine's stats: reachable, no tenant
    assert "veles_engine_reachable 1.0" in text
    assert "veles_engine_live_actors{" not in text


def test_metrics_read_the_report_queue(local: TestClient) -> None:
    """The report workers serve no HTTP: their queue's figures come with every replica's /metrics
    (tests/reports/test_report_metrics.py checks the figures on a queue the workers left)."""
    text = local.get("/metrics").text
    assert "veles_report_queue_reachable 1.0" in text
    assert 'veles_reports{status="queued"}' in text
    assert "veles_report_oldest_queued_seconds" in text
