"""`/api/v1/history/...` on the real PostgreSQL: buckets keep their last point, range and
resolution limits are 422 naming the field, and 401/404 (VIEW_RISK is held by every role)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.accounts import Book
from models.db import session_scope
from models.history import RiskHistory
from models.tenancy import Role
from veles.plans import PLANS
from veles.services.history import MAX_POINTS

from .conftest import World

# Two days ago on the hour: inside every plan's history retention, whenever the suite runs (a range
# that ended before the plan's retention is refused: test_history_older_than_the_plan_keeps_...)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
LOGIN = 700001


def _point(
    tenant: int, minute: int, equity: float, login: int | None = LOGIN, book: Book | None = None
) -> RiskHistory:
    return RiskHistory(
        tenant_id=tenant,
        account_login=login,
        book=book,
        ts=T0 + timedelta(minutes=minute),
        equity=equity,
        balance=1000.0,
        margin=10.0,
        margin_level=equity / 10 * 100,
        floating=equity - 1000,
    )


@pytest.fixture
def history(world: World) -> Iterator[None]:
    """Tenant A: account LOGIN and the A/B/total books, one point a minute for 30 minutes, equity
    1000 + minute; tenant B: the same login with equity 5000."""
    with session_scope(world.settings.database_url) as session:
        for minute in range(30):
            session.add(_point(world.a, minute, 1000.0 + minute))
            session.add(_point(world.a, minute, 2000.0 + minute, login=None, book=Book.A))
            session.add(_point(world.a, minute, 3000.0 + minute, login=None, book=None))
        session.add(_point(world.b, 0, 5000.0))
        session.add(_point(world.b, 0, 5000.0, login=LOGIN + 1))
    yield
    with session_scope(world.settings.database_url) as session:
        for row in session.exec(select(RiskHistory)).all():
            session.delete(row)


def _range(start: int = 0, end: int = 30, resolution: str = "1m") -> dict[str, str]:
    return {
        "start": (T0 + timedelta(minutes=start)).isoformat(),
        "end": (T0 + timedelta(minutes=end)).isoformat(),
        "resolution": resolution,
    }


def test_account_history_keeps_each_buckets_last_point(api: TestClient, world: World, history: None) -> None:
    headers = world.headers(world.a, Role.VIEWER)
    minute = api.get(f"/api/v1/history/accounts/{LOGIN}", headers=headers, params=_range(0, 10))
    assert minute.status_code == 200, minute.text
    assert [p["equity"] for p in minute.json()] == [1000.0 + m for m in range(10)]
    five = api.get(f"/api/v1/history/accounts/{LOGIN}", headers=headers, params=_range(0, 30, "5m")).json()
    assert [p["equity"] for p in five] == [1004.0, 1009.0, 1014.0, 1019.0, 1024.0, 1029.0]
    assert five[0]["ts"].startswith(f"{T0 + timedelta(minutes=4):%Y-%m-%dT%H:%M}")  # the bucket's last point
    assert five[0]["margin_level"] == pytest.approx(1004.0 / 10 * 100)


def test_book_series(api: TestClient, world: World, history: None) -> None:
    headers = world.headers(world.a, Role.VIEWER)
    book_a = api.get(
        "/api/v1/history/book", headers=headers, params={**_range(0, 60, "1h"), "series": "A"}
    ).json()
    assert [p["equity"] for p in book_a] == [2029.0]
    total = api.get("/api/v1/history/book", headers=headers, params=_range(0, 60, "15m")).json()
    assert [p["equity"] for p in total] == [3014.0, 3029.0]
    assert api.get("/api/v1/history/book", headers=headers, params={**_range(), "series": "B"}).json() == []
    other = api.get("/api/v1/history/book", headers=world.headers(world.b), params=_range()).json()
    assert [p["equity"] for p in other] == []  # B's own (it has no book points), never A's


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (_range(10, 5), "end"),
        ({**_range(), "resolution": "2m"}, "resolution"),
        (
            {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=MAX_POINTS + 1)).isoformat()},
            "resolution",
        ),
        ({"start": "not a time", "end": T0.isoformat()}, "start"),
        ({"end": T0.isoformat()}, "start"),
        ({**_range(), "series": "C"}, "series"),
        # before year 1 once moved to UTC (found by the OpenAPI fuzz test: it was a 500)
        ({"start": "0001-01-01T00:00:00+01:00", "end": T0.isoformat()}, "start"),
    ],
)
def test_bad_ranges_are_422_naming_the_field(
    api: TestClient, world: World, history: None, params: dict[str, str], field: str
) -> None:
    response = api.get("/api/v1/history/book", headers=world.headers(world.a), params=params)
    assert response.status_code == 422, response.text
    assert field in [error["loc"][-1] for error in response.json()["detail"]]


def test_anonymous_and_other_tenant(api: TestClient, world: World, history: None) -> None:
    for path in (f"/api/v1/history/accounts/{LOGIN}", "/api/v1/history/book"):
        assert api.get(path, params=_range()).status_code == 401
        for role in (Role.VIEWER, Role.RISK_MANAGER, Role.TENANT_ADMIN):  # every tenant role may view risk
            assert api.get(path, params=_range(), headers=world.headers(world.a, role)).status_code == 200
    # B has LOGIN too (its own, equity 5000); LOGIN + 1 exists only in B, so A is told 404
    b_points = api.get(
        f"/api/v1/history/accounts/{LOGIN}", params=_range(), headers=world.headers(world.b)
    ).json()
    assert [p["equity"] for p in b_points] == [5000.0]
    only_b = api.get(f"/api/v1/history/accounts/{LOGIN + 1}", params=_range(), headers=world.headers(world.a))
    assert only_b.status_code == 404


def test_history_older_than_the_plan_keeps_is_refused_with_the_upgrade(
    api: TestClient, world: World, history: None
) -> None:
    """Points older than the plan's retention were pruned: a range that ended before it is a 409
    saying so, with where to upgrade, not an empty answer taken for a quiet book."""
    days = PLANS["starter"].history_days  # tenant A is on Starter
    old = {"start": (T0 - timedelta(days=days + 3)).isoformat(),
           "end": (T0 - timedelta(days=days)).isoformat(), "resolution": "1h"}
    for path in (f"/api/v1/history/accounts/{LOGIN}", "/api/v1/history/book"):
        refused = api.get(path, params=old, headers=world.headers(world.a))
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"].startswith(f"the Starter plan keeps {days} days of history")
        assert refused.json()["upgrade_url"].endswith("/plan")
    straddling = {**old, "end": (T0 + timedelta(minutes=30)).isoformat()}  # starts before: what is kept
    kept = api.get(f"/api/v1/history/accounts/{LOGIN}", params=straddling, headers=world.headers(world.a))
    assert kept.status_code == 200
    assert [p["equity"] for p in kept.json()] == [1029.0]
