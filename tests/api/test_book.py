"""`/api/v1/book` serves the caller's tenant only, from a LiveFeed fed by stand-in aggregators.

The aggregators are the only stand-ins: the feed, its follower tasks and the HTTP stack are real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.connections import Mt5Connection
from models.db import session_scope
from tests.stubs.remote import Remote
from veles.api import create_api
from veles.config import Settings
from veles.services.live import LiveFeed

from .conftest import DEMO_EMAIL, DEMO_PASSWORD, OTHER_EMAIL, OTHER_PASSWORD, tenant_of


class _Aggregator:
    """Publishes one snapshot whose equity identifies the tenant, then nothing new."""

    def __init__(self, tenant_id: int) -> None:
        message = {"tenant_id": tenant_id, "epoch": 1, "version": 3, "full": True, "sent_at": 1.0,
                   "published_at": 2.0, "totals": {"equity": 1000.0 * tenant_id, "accounts": 1},
                   "accounts": [{"login": 100 + tenant_id, "group": "real", "equity": 1000.0 * tenant_id}]}

        async def snapshot() -> dict[str, Any]:
            return message

        async def diffs_since(_version: int, timeout: float, _epoch: int) -> list[dict[str, Any]]:
            await asyncio.sleep(timeout)
            return []

        self.snapshot = Remote(snapshot)
        self.diffs_since = Remote(diffs_since)


@pytest.fixture
def book_client(settings: Settings) -> Iterator[tuple[TestClient, set[int]]]:
    """A client whose feed finds aggregators for the seeded tenants only (like Ray's get_actor)."""
    published = {tenant_of(settings.database_url, DEMO_EMAIL), tenant_of(settings.database_url, OTHER_EMAIL)}

    def aggregator(tenant_id: int) -> _Aggregator:
        if tenant_id not in published:
            raise ValueError(f"Failed to look up actor aggregator-{tenant_id}")
        return _Aggregator(tenant_id)

    local = Settings(_env_file=None, database_url=settings.database_url, redis_url=None)
    feed = LiveFeed(local, aggregator=aggregator)
    with TestClient(create_api(settings, live_feed=lambda: feed)) as client:
        yield client, published
        assert client.portal is not None
        client.portal.call(feed.aclose)


def _book(client: TestClient, token: str) -> tuple[int, dict[str, Any]]:
    response = client.get("/api/v1/book", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


def _sign_in(client: TestClient, email: str, password: str) -> str:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_each_tenant_sees_its_own_book(book_client: tuple[TestClient, set[int]], settings: Settings) -> None:
    client, _ = book_client
    for email, password in ((DEMO_EMAIL, DEMO_PASSWORD), (OTHER_EMAIL, OTHER_PASSWORD)):
        tenant_id = tenant_of(settings.database_url, email)
        status, book = _book(client, _sign_in(client, email, password))
        assert status == 200, book
        assert book["tenant_id"] == tenant_id
        assert book["totals"]["equity"] == 1000.0 * tenant_id
        assert (book["version"], book["accounts"], book["published_at"]) == (3, 1, 2.0)
        # a second read comes from the replica the feed now keeps current
        assert _book(client, _sign_in(client, email, password)) == (200, book)


@pytest.fixture
def other_stores_a_connection(settings: Settings) -> Iterator[int]:
    """The second broker stores an MT5 connection (so an engine should run for it); removed after."""
    tenant_id = tenant_of(settings.database_url, OTHER_EMAIL)
    with session_scope(settings.database_url) as session:
        row = Mt5Connection(tenant_id=tenant_id, server="sim://other", login=1000,
                            credentials_encrypted=b"not-read-by-this-test")
        session.add(row)
        session.flush()
        connection_id = row.id
    yield tenant_id
    with session_scope(settings.database_url) as session:
        session.delete(session.get(Mt5Connection, connection_id))


def test_503_until_the_engine_publishes(
    book_client: tuple[TestClient, set[int]], other_stores_a_connection: int
) -> None:
    """A signed-in user of a tenant whose engine has not published yet. (This test used to forge a
    token naming a tenant with no users; a token's tenant must now match its user's, so it signs in
    a real user and takes that tenant's aggregator away instead.) The tenant stores a connection:
    without one no engine runs at all, and the book is empty rather than late (next test)."""
    client, published = book_client
    published.discard(other_stores_a_connection)
    status, body = _book(client, _sign_in(client, OTHER_EMAIL, OTHER_PASSWORD))
    assert status == 503
    assert "not published" in body["detail"]


def test_a_tenant_without_a_connection_has_an_empty_book(
    book_client: tuple[TestClient, set[int]], settings: Settings
) -> None:
    """No MT5 connection, so no engine runs for the tenant (issue 14): its book and account list are
    empty with zero totals, not a 503 asking to try again for something that will never come."""
    client, published = book_client
    published.discard(tenant_of(settings.database_url, OTHER_EMAIL))
    token = _sign_in(client, OTHER_EMAIL, OTHER_PASSWORD)
    status, body = _book(client, token)
    assert status == 200, body
    assert (body["accounts"], body["version"]) == (0, 0)
    assert body["totals"]["equity"] == 0.0
    assert body["totals"]["accounts"] == 0
    assert body["totals"]["margin_level"] is None
    assert body["totals"]["exposure"] == []
    accounts = client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert accounts.status_code == 200, accounts.text
    assert (accounts.json()["total"], accounts.json()["accounts"]) == (0, [])


def test_book_requires_a_token(book_client: tuple[TestClient, set[int]]) -> None:
    client, _ = book_client
    assert client.get("/api/v1/book").status_code == 401


def test_a_tenant_without_an_engine_is_answered_at_once_not_after_a_wait(
    book_client: tuple[TestClient, set[int]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant that runs no engine: the book, the accounts and the flow answer with what is known
    (the empty book; a 503 once a connection is stored) as soon as the feed's first look for its
    engine came back, not after waiting out a bound for a book that is not coming (it was a fixed
    2 s wait on every such read). The bound is made a minute here: a read that waited for it
    would take that long."""
    monkeypatch.setattr("veles.api.book.FIRST_LOOK_WAIT", 60.0)
    client, published = book_client
    tenant_id = tenant_of(settings.database_url, OTHER_EMAIL)
    published.discard(tenant_id)
    headers = {"Authorization": f"Bearer {_sign_in(client, OTHER_EMAIL, OTHER_PASSWORD)}"}
    for path in ("/api/v1/book", "/api/v1/accounts", "/api/v1/flow"):
        started = time.monotonic()
        response = client.get(path, headers=headers)
        took = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert took < 30, f"{path} waited {took:.1f} s for an engine that does not run"
    assert client.get("/api/v1/book", headers=headers).json()["accounts"] == 0
    with session_scope(settings.database_url) as session:  # a stored connection: 503, also at once
        row = Mt5Connection(tenant_id=tenant_id, server="sim://other", login=1001, credentials_encrypted=b"x")
        session.add(row)
        session.flush()
        connection_id = row.id
    try:
        started = time.monotonic()
        assert client.get("/api/v1/book", headers=headers).status_code == 503
        assert time.monotonic() - started < 30
    finally:
        with session_scope(settings.database_url) as session:
            session.delete(session.get(Mt5Connection, connection_id))
    engine = tenant_of(settings.database_url, DEMO_EMAIL)  # a tenant whose engine runs: its figures
    started = time.monotonic()
    status, book = _book(client, _sign_in(client, DEMO_EMAIL, DEMO_PASSWORD))
    assert (status, book["totals"]["equity"]) == (200, 1000.0 * engine)
    assert time.monotonic() - started < 30
