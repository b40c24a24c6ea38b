"""`POST /api/v1/calculator`: the risk core's figures over HTTP, invalid input as 422 naming the
field (schema errors and the core's own checks alike), 401 without a token."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.tenancy import Role
from veles.risk.calculator import calculate

from .conftest import World

DOCUMENT: dict[str, Any] = {
    "account": {"currency": "USD", "leverage": 100, "balance": 10_000.0},
    "symbols": {"EURUSD": {"contract_size": 100_000, "base_currency": "EUR", "profit_currency": "USD"}},
    "quotes": {"EURUSD": {"bid": 1.1000, "ask": 1.1002}},
    "positions": [{"ticket": 1, "symbol": "EURUSD", "type": "buy", "volume": 1.0, "price_open": 1.0950}],
}


def test_figures_equal_the_risk_core(api: TestClient, world: World) -> None:
    for role in (Role.VIEWER, Role.RISK_MANAGER, Role.TENANT_ADMIN):  # every tenant role may use it
        response = api.post("/api/v1/calculator", headers=world.headers(world.a, role), json=DOCUMENT)
        assert response.status_code == 200, response.text
        assert response.json() == calculate(DOCUMENT)
    body = response.json()
    assert body["positions"][0]["profit"] == pytest.approx(500.0)  # 1 lot, +50 pips at the bid
    # 1000 EUR at the rate MT5 fixed at opening (the open price 1.0950), not today's Ask 1.1002
    assert body["account"]["margin"] == 1095.0
    assert body["positions"][0]["margin_rate"] == 1.095


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        (_with(("positions", 0, "volume"), 0), ["positions", 0, "volume"]),
        (_with(("account", "currency"), "dollars"), ["account", "currency"]),
        (_with(("account", "leverage"), -5), ["account", "leverage"]),
        (_with(("positions", 0, "symbol"), "GBPUSD"), ["positions[0]", "symbol"]),  # the core's check
        (_with(("quotes",), {}), ["quotes", "EURUSD"]),  # a held symbol without a quote
        (_with(("account", "colour"), "red"), ["account", "colour"]),
        (_with(("account", "balance"), -6.7e307), ["account", "balance"]),  # found by schemathesis
    ],
)
def test_invalid_input_is_422_naming_the_field(
    api: TestClient, world: World, document: dict[str, Any], loc: list[Any]
) -> None:
    response = api.post("/api/v1/calculator", headers=world.headers(world.a), json=document)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"][1:] == loc
    assert error["msg"]


def test_anonymous_is_401(api: TestClient) -> None:
    assert api.post("/api/v1/calculator", json=DOCUMENT).status_code == 401
