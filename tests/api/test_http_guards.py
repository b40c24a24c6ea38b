"""What every HTTP answer of the backend guarantees around the routes: a body over
MAX_REQUEST_BYTES is refused with 413 before anything parses it (declared or streamed), security
headers on every answer (HSTS only over TLS), CORS only for the configured origins, and /metrics
only for a METRICS_TOKEN bearer or a caller on this host, with tenants named by id only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from reflex.app import App
from starlette.types import Message, Scope

from veles.api import create_api
from veles.api.bodylimit import DRAIN_BYTES, BodyLimitMiddleware
from veles.config import Settings
from veles.risk.calculator import MAX_POSITIONS

from .conftest import World

LOCAL = ("127.0.0.1", 50_000)


def _variant(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


# -- request size --------------------------------------------------------------------------------

def test_a_big_body_is_413_before_sign_in(client: TestClient, settings: Settings) -> None:
    """Today's 50 MB sign-in body is refused unread: the default limit is 1 MiB."""
    assert settings.max_request_bytes == 1_048_576
    big = b'{"email": "' + b"a" * (settings.max_request_bytes + 1) + b'"}'
    for path in ("/api/v1/auth/token", "/api/v1/calculator"):
        response = client.post(path, content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413, (path, response.status_code)
        assert "MAX_REQUEST_BYTES" in response.json()["detail"]
        assert response.headers["x-content-type-options"] == "nosniff"  # a refusal carries the headers too


def test_a_streamed_body_without_length_is_cut_at_the_limit(settings: Settings) -> None:
    small = _variant(settings, max_request_bytes=4_000)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1_000

    with TestClient(create_api(small)) as client:
        response = client.post("/api/v1/auth/token", content=chunks(),
                               headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers  # sent chunked
        assert response.status_code == 413
        under = client.post("/api/v1/auth/token", content=b"{}", headers={"content-type": "application/json"})
        assert under.status_code == 422  # a body under the limit reaches the route's validation


def test_the_middleware_stops_reading_at_the_limit() -> None:
    """The app behind it never receives more than the limit: the chunk that crosses it ends the
    read, and nothing after it is pulled from the client."""
    pulled: list[int] = []
    sent: list[Message] = []

    async def reader(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async def receive() -> Message:
        pulled.append(1)
        return {"type": "http.request", "body": b"y" * 1_000, "more_body": len(pulled) < 100}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(BodyLimitMiddleware(reader, limit=2_500)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(pulled) == 3
    assert b"2500-byte limit" in sent[1]["body"]


def test_calculator_positions_are_capped_naming_the_field(api: TestClient, world: World) -> None:
    def positions(n: int) -> list[dict[str, Any]]:
        return [{"ticket": t, "symbol": "EURUSD", "type": "buy", "volume": 0.01, "price_open": 1.1}
                for t in range(1, n + 1)]

    document = {
        "account": {"currency": "USD", "leverage": 100, "balance": 10_000.0},
        "symbols": {"EURUSD": {"base_currency": "EUR", "profit_currency": "USD"}},
        "quotes": {"EURUSD": {"bid": 1.1, "ask": 1.1002}},
        "positions": positions(MAX_POSITIONS + 1),
    }
    assert len(json.dumps(document)) < 1_048_576  # refused for its count, not its size
    response = api.post("/api/v1/calculator", headers=world.headers(world.a), json=document)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "positions"]
    document["positions"] = positions(MAX_POSITIONS)
    at_limit = api.post("/api/v1/calculator", headers=world.headers(world.a), json=document)
    assert at_limit.status_code == 200, at_limit.text


def test_the_portal_calculator_names_the_capped_field() -> None:
    from veles.risk.calculator import CalcError
    from veles.services.calculator import what_if

    with pytest.raises(CalcError) as refused:
        what_if({"account": {}, "symbols": {}, "positions": [{}] * (MAX_POSITIONS + 1)})
    assert refused.value.field == "positions"
    assert f"at most {MAX_POSITIONS}" in str(refused.value)


# -- security headers ----------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/api/health"), client.get("/api/v1/me"), client.get("/no-such-page")):
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp
        assert "default-src 'self'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in headers  # plain http: no HSTS


def test_pages_mounted_under_the_api_carry_them_too(settings: Settings) -> None:
    """Reflex mounts its backend (and in production its pages) under this app, as done here."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(_request: Any) -> HTMLResponse:
        return HTMLResponse("<html>portal</html>")

    app = create_api(settings)
    app.mount("", Starlette(routes=[Route("/login", page)]))
    with TestClient(app) as client:
        response = client.get("/login")
    assert response.text == "<html>portal</html>"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_hsts_only_over_tls(settings: Settings) -> None:
    proxied = _variant(settings, trusted_proxies="10.0.0.0/8")
    https = {"x-forwarded-proto": "https"}
    with TestClient(create_api(proxied), client=("10.1.2.3", 4000)) as client:
        assert "max-age=" in client.get("/api/health", headers=https).headers["strict-transport-security"]
        assert "strict-transport-security" not in client.get("/api/health").headers
    with TestClient(create_api(proxied), client=("192.0.2.7", 4000)) as client:  # not a trusted proxy
        assert "strict-transport-security" not in client.get("/api/health", headers=https).headers
    with TestClient(create_api(_variant(settings, public_url="https://risk.example.com"))) as client:
        assert "strict-transport-security" in client.get("/api/health").headers
    with TestClient(create_api(settings), base_url="https://testserver") as client:
        assert "strict-transport-security" in client.get("/api/health").headers


# -- CORS ------------------------------------------------------------------------------------------

def test_cors_answers_only_configured_origins(settings: Settings) -> None:
    """Reflex adds Starlette's CORS middleware with rx.Config's cors_allowed_origins, which
    rxconfig takes from the settings (default: the portal's own origin, never "*")."""
    import rxconfig

    assert "*" not in rxconfig.config.cors_allowed_origins
    assert list(rxconfig.config.cors_allowed_origins) == rxconfig._settings.allowed_origins
    assert Settings(_env_file=None).allowed_origins == ["http://localhost:3000"]
    assert Settings(_env_file=None, public_url="https://risk.example.com/").allowed_origins == [
        "https://risk.example.com"]
    assert Settings(_env_file=None, cors_origins="https://a.example, https://b.example").allowed_origins == [
        "https://a.example", "https://b.example"]

    app: FastAPI = create_api(settings)
    App._add_cors(app)  # exactly what Reflex does to the API app it mounts itself under
    preflight = {"access-control-request-method": "POST"}
    allowed = rxconfig.config.cors_allowed_origins[0]
    with TestClient(app) as client:
        evil = client.options("/api/v1/me", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in evil.headers
        cookie = client.get("/api/health", headers={"origin": "https://evil.example", "cookie": "a=b"})
        assert "access-control-allow-origin" not in cookie.headers
        ours = client.options("/api/v1/me", headers={"origin": allowed, **preflight})
        assert ours.headers["access-control-allow-origin"] == allowed


# -- /metrics --------------------------------------------------------------------------------------

def test_metrics_answer_this_host_only_without_a_token(settings: Settings) -> None:
    app = create_api(settings)
    with TestClient(app, client=("203.0.113.9", 4000)) as remote:
        assert remote.get("/metrics").status_code == 403
    with TestClient(app, client=LOCAL) as local:
        assert local.get("/metrics").status_code == 200
        relayed = local.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
        assert relayed.status_code == 403  # a proxy on this host relaying someone else


def test_metrics_need_the_bearer_token_when_one_is_set(settings: Settings) -> None:
    app = create_api(_variant(settings, metrics_token=SecretStr("scrape-me-0123456789")))
    with TestClient(app, client=LOCAL) as client:
        assert client.get("/metrics").status_code == 401  # not even from this host without it
        wrong = client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        right = client.get("/metrics", headers={"authorization": "Bearer scrape-me-0123456789"})
        assert right.status_code == 200
        assert "veles_http_requests_total" in right.text
    blank = create_api(_variant(settings, metrics_token=SecretStr("")))  # `METRICS_TOKEN=` is unset
    with TestClient(blank, client=LOCAL) as client:
        assert client.get("/metrics", headers={"authorization": "Bearer "}).status_code == 200  # local
    with TestClient(blank, client=("203.0.113.9", 4000)) as remote:
        assert remote.get("/metrics", headers={"authorization": "Bearer "}).status_code == 403


def test_metrics_name_tenants_by_id_only(world: World, redis_url: str) -> None:
    """The engine's per-tenant families carry the tenant id; no tenant name reaches a label."""
    import redis as redis_client

    from actors.engine_stats import EngineStats, engine_stats_key

    row = EngineStats(world.a).as_row()
    client = redis_client.Redis.from_url(redis_url)
    client.set(engine_stats_key(world.settings.redis_prefix, world.a), json.dumps(row))
    client.close()
    with TestClient(create_api(world.settings), client=LOCAL) as api:
        text = api.get("/metrics").text
    assert f'veles_engine_live_actors{{tenant="{world.a}"}}' in text
    assert "Api Broker" not in text


# -- declared answers ------------------------------------------------------------------------------

def test_every_operation_declares_the_answers_the_common_machinery_gives(app: FastAPI) -> None:
    """The quick check beside schemathesis' status_code_conformance (tests/api/test_openapi_fuzz.py):
    rate limits, outages, oversized bodies, missing tokens and unknown ids are documented everywhere
    they can happen."""
    operations = [(method, path, operation) for path, ops in app.openapi()["paths"].items()
                  for method, operation in ops.items() if path.startswith("/api/v1/")]
    assert len(operations) > 20
    for method, path, operation in operations:
        declared = set(operation["responses"])
        where = f"{method.upper()} {path}"
        assert {"429", "503"} <= declared, where
        if "requestBody" in operation:
            assert {"400", "413"} <= declared, where
        if "{" in path:
            assert "404" in declared, where
        if operation.get("security"):
            assert "401" in declared, where


def test_a_declared_big_body_is_read_to_its_end_before_the_413_and_a_huge_one_is_not() -> None:
    """A proxy in front is still writing the body when the 413 comes: closing on it made nginx
    answer 502 instead. A declared body up to DRAIN_BYTES is read and thrown away first (the app
    sees none of it); a bigger one is refused without reading a byte."""
    def run(declared: int) -> tuple[int, list[Message]]:
        pulled: list[int] = []
        sent: list[Message] = []
        chunks = declared // 64_000 + 1

        async def app(scope: Scope, receive: Any, send: Any) -> None:
            raise AssertionError("the app must not run")

        async def receive() -> Message:
            pulled.append(1)
            return {"type": "http.request", "body": b"z" * 64_000, "more_body": len(pulled) < chunks}

        async def send(message: Message) -> None:
            sent.append(message)

        scope: Scope = {"type": "http", "method": "POST", "path": "/",
                        "headers": [(b"content-length", str(declared).encode())]}
        asyncio.run(BodyLimitMiddleware(app, limit=10_000)(scope, receive, send))
        return len(pulled), sent

    pulled, sent = run(1_536_000)
    assert sent[0]["status"] == 413
    assert pulled == 1_536_000 // 64_000 + 1  # every chunk, to the last
    pulled, sent = run(DRAIN_BYTES + 1)
    assert sent[0]["status"] == 413
    assert pulled == 0
