"""VaR of the live book's service side on the real PostgreSQL (row-level security on): the closes
the engine keeps (recorded live, back-filled from the server's history without overwriting), the
common days VaR is measured over, the figures against a hand-computed fixture, and the refusals."""

from __future__ import annotations

from datetime import date

import pytest

from actors.close_keeper import backfill_closes, record_closes
from models.db import session_scope, upgrade
from models.tenancy import Tenant
from tests.models.conftest import reset_schema
from veles.mt5.history import DailyHistory
from veles.risk.events import Quote
from veles.services.var import VarUnavailable, load_closes, var_view

DAY_MS = 86_400_000
MONDAY = 1_764_547_200_000  # 2025-12-01 00:00 UTC


@pytest.fixture
def tenants(pg_url: str) -> tuple[str, int, int]:
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        a, b = Tenant(name="Var A"), Tenant(name="Var B")
        session.add_all([a, b])
        session.flush()
        assert a.id is not None
        assert b.id is not None
        return pg_url, a.id, b.id


def _quote(symbol: str, mid: float, day: int, hour: int = 12) -> Quote:
    return Quote(symbol, mid - 0.5, mid + 0.5, MONDAY + day * DAY_MS + hour * 3_600_000)


def test_closes_are_the_last_mid_of_each_day_and_history_never_overwrites(
    tenants: tuple[str, int, int],
) -> None:
    url, a, b = tenants
    history = DailyHistory(("2025-11-28", "2025-12-01"), {"XAUUSD": (90.0, 91.0), "US500": (10.0, 11.0)})
    assert backfill_closes(url, a, history) == 4
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 100.0, 0, 9), "US500": _quote("US500", 20.0, 0, 9)})
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 101.0, 0, 20)})  # later the same day: the close moves
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 102.0, 1), "US500": _quote("US500", 21.0, 1)})
    backfill_closes(url, a, history)  # a restart: the server's history again, recorded closes stay
    dates, closes = load_closes(url, a, ["XAUUSD", "US500"])
    assert dates == [date(2025, 11, 28), date(2025, 12, 1), date(2025, 12, 2)]
    assert closes == {"XAUUSD": [90.0, 101.0, 102.0], "US500": [10.0, 20.0, 21.0]}
    with pytest.raises(VarUnavailable, match="no daily close is stored yet for US500, XAUUSD"):
        load_closes(url, b, ["XAUUSD", "US500"])  # tenant B sees none of A's rows


def test_only_days_every_symbol_has_count(tenants: tuple[str, int, int]) -> None:
    url, a, _ = tenants
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 100.0, 0), "US500": _quote("US500", 20.0, 0)})
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 101.0, 1)})  # US500 had no quote that day
    record_closes(url, a, {"XAUUSD": _quote("XAUUSD", 99.0, 2), "US500": _quote("US500", 19.0, 2)})
    dates, closes = load_closes(url, a, ["XAUUSD", "US500"])
    assert dates == [date(2025, 12, 1), date(2025, 12, 3)]
    assert closes == {"XAUUSD": [100.0, 99.0], "US500": [20.0, 19.0]}


def test_var_on_a_small_fixture_by_hand() -> None:
    """Broker long 1,000,000 USD of XAUUSD over 21 closes: 20 returns, the 95% VaR is the
    ceil(20 x 5%) = 1st largest loss, the 99% one too; each is the exposure times the return."""
    returns = [0.01, -0.02, 0.005, -0.035, 0.0, 0.012, -0.004, 0.02, -0.01, 0.003,
               0.007, -0.015, 0.001, 0.009, -0.006, 0.011, -0.001, 0.004, -0.008, 0.002]
    closes = [100.0]
    for r in returns:
        closes.append(closes[-1] * (1 + r))
    dates = [date(2025, 1, 1 + i) for i in range(len(closes))]
    view = var_view({"XAUUSD": 1_000_000.0}, dates, {"XAUUSD": closes})
    historical = {f["confidence"]: f for f in view["var"] if f["method"] == "historical"}
    assert historical[0.95]["var_usd"] == pytest.approx(35_000.0)
    assert historical[0.95]["scenario_date"] == "2025-01-05"  # the day of the -3.5% return
    assert historical[0.99]["var_usd"] == pytest.approx(35_000.0)
    assert historical[0.95]["contributions_usd"] == {"XAUUSD": pytest.approx(35_000.0)}
    assert view["history"] == {"days": 21, "first": "2025-01-01", "last": "2025-01-21"}
    assert view["backtest"] == []  # 20 returns: too short for a 250-day backtest


def test_refusals_say_why() -> None:
    with pytest.raises(VarUnavailable, match="the B-book is flat"):
        var_view({}, [date(2025, 1, 1)] * 3, {})
    with pytest.raises(VarUnavailable, match="2 common days of closes stored; VaR needs at least 3"):
        var_view({"XAUUSD": 1.0}, [date(2025, 1, 1), date(2025, 1, 2)], {"XAUUSD": [1.0, 2.0]})
