"""`/api/v1/accounts` and `/api/v1/accounts/{login}` against the real engine: a local Ray cluster
runs both tenants' supervisors, each fed by its own simulated broker (2 accounts each, the same
logins, different seeds), publishing over the test Redis to a real LiveFeed."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.tenancy import Role
from veles.api import create_api
from veles.mt5.catalog import LISTINGS_BY_NAME
from veles.mt5.traders import country_of
from veles.services.engine import start_engine, stop_engine
from veles.services.live import LiveFeed

from .conftest import World

ACCOUNTS = 2
LOGINS = [100_000, 100_001]


@pytest.fixture(scope="module")
def engine(world: World, ray_local: None, redis_url_module: str) -> Iterator[None]:
    """Both tenants' engines, stopped at the end of the module."""
    asyncio.run(start_engine(world.settings, simulated_accounts=ACCOUNTS))
    yield
    asyncio.run(stop_engine(world.settings))


@pytest.fixture
def live(world: World, engine: None) -> Iterator[TestClient]:
    """A client whose app reads the engine through its own LiveFeed (not the process default)."""
    feed = LiveFeed(world.settings)
    with TestClient(create_api(world.settings, live_feed=lambda: feed)) as client:
        yield client
        assert client.portal is not None
        client.portal.call(feed.aclose)


def _page(client: TestClient, world: World, tenant: int, **params: Any) -> dict[str, Any]:
    """A page once the tenant's book is published (the first request may find it still starting)."""
    deadline = time.monotonic() + 60
    while True:
        response = client.get("/api/v1/accounts", headers=world.headers(tenant, Role.VIEWER), params=params)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["total"] or time.monotonic() > deadline or params:
                return body
        time.sleep(0.5)


def test_list_filters_sorts_and_pages(live: TestClient, world: World) -> None:
    every = _page(live, world, world.a)
    assert every["total"] == ACCOUNTS
    assert sorted(row["login"] for row in every["accounts"]) == LOGINS
    by_equity = _page(live, world, world.a, sort="equity", order="desc")
    equities = [row["equity"] for row in by_equity["accounts"]]
    assert equities == sorted(equities, reverse=True)
    second = _page(live, world, world.a, sort="login", limit=1, offset=1)
    assert (second["total"], [row["login"] for row in second["accounts"]]) == (ACCOUNTS, [LOGINS[1]])
    assert _page(live, world, world.a, q="100001")["total"] == 1
    book = every["accounts"][0]["book"]
    assert all(row["book"] == book for row in _page(live, world, world.a, book=book)["accounts"])


def test_rows_name_the_client_its_country_and_server(live: TestClient, world: World) -> None:
    """The simulated broker's user records (name, country) and the connection feeding each account
    reach the rows; the list sorts by them and filters on them."""
    rows = _page(live, world, world.a)["accounts"]
    assert {row["login"]: row["country"] for row in rows} == {login: country_of(login) for login in LOGINS}
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", row["name"]) for row in rows), rows
    assert {row["server"] for row in rows} == {f"sim-{world.a}"}
    by_name = _page(live, world, world.a, sort="name", order="desc")["accounts"]
    assert [row["name"] for row in by_name] == sorted((row["name"] for row in rows), reverse=True)
    country = rows[0]["country"]
    kept = _page(live, world, world.a, country=country)["accounts"]
    assert kept
    assert all(row["country"] == country for row in kept)
    assert _page(live, world, world.a, server=f"sim-{world.a}")["total"] == ACCOUNTS
    assert _page(live, world, world.a, server="conn-999999")["total"] == 0
    surname = rows[0]["name"].split()[1].lower()
    assert rows[0]["login"] in [row["login"] for row in _page(live, world, world.a, q=surname)["accounts"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "password"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": 0}, "limit"),
        ({"book": "C"}, "book"),
        ({"state": "fine"}, "state"),
        ({"offset": -1}, "offset"),
        ({"label": "whale"}, "label"),
        ({"country": "x" * 65}, "country"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    live: TestClient, world: World, params: dict[str, Any], field: str
) -> None:
    response = live.get("/api/v1/accounts", headers=world.headers(world.a), params=params)
    assert response.status_code == 422
    assert field in [error["loc"][-1] for error in response.json()["detail"]]


def test_rows_carry_toxic_flow_and_sort_and_filter_on_it(live: TestClient, world: World) -> None:
    every = _page(live, world, world.a, sort="toxicity", order="desc")
    rows = every["accounts"]
    assert all({"risk_score", "toxicity", "flow_label", "flow_labels", "flow_pnl"} <= set(r) for r in rows)
    assert [r["toxicity"] for r in rows] == sorted((r["toxicity"] for r in rows), reverse=True)
    for label in {r["flow_label"] for r in rows}:
        filtered = _page(live, world, world.a, label=label)
        assert {r["login"] for r in filtered["accounts"]} == {
            r["login"] for r in rows if label in r["flow_labels"].split(",")}
    summary = live.get("/api/v1/flow", headers=world.headers(world.a, Role.VIEWER))
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["accounts"] == ACCOUNTS
    assert sum(body["labels"].values()) == ACCOUNTS
    b_book = [r for r in rows if r["book"] == "B"]
    assert sum(item["accounts"] for item in body["b_book_pnl_by_label"]) == len(b_book)
    # money in integer USD cents: the book's savings are exactly the labels' sum
    assert isinstance(body["a_book_savings_usd_minor"], int)
    assert all(isinstance(item["broker_pnl_usd_minor"], int) and isinstance(item["saved_usd_minor"], int)
               for item in body["b_book_pnl_by_label"])
    labels = body["b_book_pnl_by_label"]
    assert body["a_book_savings_usd_minor"] == sum(item["saved_usd_minor"] for item in labels)
    assert live.get("/api/v1/flow").status_code == 401


def test_a_trader_profile_explains_its_score(live: TestClient, world: World) -> None:
    _page(live, world, world.a)
    response = live.get(f"/api/v1/accounts/{LOGINS[0]}/flow", headers=world.headers(world.a))
    assert response.status_code == 200, response.text
    profile, routing = response.json()["profile"], response.json()["routing"]
    assert profile["login"] == LOGINS[0]
    assert {f["detector"] for f in profile["findings"]} == {
        "scalping", "latency_arbitrage", "martingale_grid", "news", "sharp_deals", "hedged_pair", "syndicate"}
    points = sorted((f["points"] for f in profile["findings"]), reverse=True)
    assert profile["toxicity"] == pytest.approx(min(100.0, points[0] + 0.25 * sum(points[1:])), abs=0.11)
    assert [m["horizon_s"] for m in profile["markout"]] == [1, 5, 60]
    assert len(profile["holds"]) == 7
    assert routing["advice"] in ("A", "B")
    assert isinstance(routing["saved_usd_minor"], int)
    assert isinstance(routing["client_result_usd_minor"], int)
    assert routing["saved_usd_minor"] >= 0
    assert live.get("/api/v1/accounts/999/flow", headers=world.headers(world.a)).status_code == 404


def test_detail_has_positions_and_is_the_callers_own(live: TestClient, world: World) -> None:
    _page(live, world, world.a)
    details = {}
    for tenant in (world.a, world.b):
        response = live.get(f"/api/v1/accounts/{LOGINS[0]}", headers=world.headers(tenant))
        assert response.status_code == 200, response.text
        details[tenant] = response.json()
        figures = details[tenant]["figures"]
        assert figures["login"] == LOGINS[0]
        assert figures["positions"] == len(details[tenant]["positions"])
        for position in details[tenant]["positions"]:
            assert {"ticket", "symbol", "side", "volume", "price_open", "profit"} <= set(position)
            # when it opened (the server's clock) and its stops (0: none), as the terminal lists them
            assert datetime.fromisoformat(position["time"]).year >= 2000
            assert position["sl"] >= 0
            assert position["tp"] >= 0
            symbol = position["symbol"]  # its digits, as the server quotes it
            assert details[tenant]["digits"][symbol] == LISTINGS_BY_NAME[symbol].spec.digits
    # the same login in two brokers: each sees its own account (different seeds, different books)
    assert details[world.a]["figures"]["balance"] != details[world.b]["figures"]["balance"]
    assert live.get("/api/v1/accounts/999", headers=world.headers(world.a)).status_code == 404


def test_anonymous_is_401_and_every_role_may_view(live: TestClient, world: World) -> None:
    for path in ("/api/v1/accounts", f"/api/v1/accounts/{LOGINS[0]}"):
        assert live.get(path).status_code == 401
        for role in (Role.VIEWER, Role.RISK_MANAGER, Role.TENANT_ADMIN):
            assert live.get(path, headers=world.headers(world.a, role)).status_code == 200


def test_a_rule_change_reaches_the_running_engine(live: TestClient, world: World) -> None:
    _page(live, world, world.a)
    headers = world.headers(world.a, Role.RISK_MANAGER)
    created = live.post(
        "/api/v1/alert-rules", headers=headers, json={"kind": "margin_level", "threshold": 75}
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["rule"]["id"]
    engine = created.json()["engine"]
    assert engine["running"] is True
    assert str(rule_id) in engine["rules"]  # the engine names stored rules by row id
    removed = live.delete(f"/api/v1/alert-rules/{rule_id}", headers=headers).json()["engine"]
    assert removed["running"] is True
    assert str(rule_id) not in removed["rules"]


def test_detail_lists_the_most_recent_deals_newest_first(live: TestClient, world: World) -> None:
    """The simulated traders deal within seconds; each deal carries MT5's fields."""
    _page(live, world, world.a)
    deadline = time.monotonic() + 90
    deals: list[dict[str, Any]] = []
    while not deals:
        assert time.monotonic() < deadline, "no deal reached either account within 90 s"
        for login in LOGINS:
            response = live.get(f"/api/v1/accounts/{login}", headers=world.headers(world.a))
            assert response.status_code == 200, response.text
            deals = deals or response.json()["deals"]
        time.sleep(0.5)
    assert len(deals) <= 50
    fields = {"ticket", "time", "symbol", "type", "entry", "volume", "price", "profit", "commission", "swap"}
    for deal in deals:
        assert fields <= set(deal)
        assert deal["type"] in {"buy", "sell", "balance", "credit"}
        assert deal["entry"] in {"in", "out", "inout"}
    tickets = [deal["ticket"] for deal in deals]
    assert tickets == sorted(tickets, reverse=True)  # MT5 tickets grow with time: newest first
    times = [deal["time"] for deal in deals]
    assert times == sorted(times, reverse=True)
