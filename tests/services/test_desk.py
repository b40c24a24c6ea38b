"""The dealer's desk figures (`veles.services.desk`): the exposure drill-down's account rows add up
to each symbol's net exactly, with and without filters, and without filters equal the book's own
sums; net exposure by currency; the accounts closest to stop-out; today's P/L, deposits,
withdrawals and volume per deposit currency and book from the real deal log (PostgreSQL), exact
in minor units; the CSV of a table as shown; an account's current prices on its page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.mt5_account import AccountActor
from models.db import session_scope, tenant_session
from models.deals import DealRecord
from models.tenancy import Tenant
from tests.risk.test_risk_columns import calls
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures, SymbolExposure
from veles.risk.book import book_from_accounts
from veles.risk.columns import ColumnBook, FigureColumns
from veles.risk.events import Side
from veles.services import desk

LOT = desk.LOT_UNITS


def _book(figures: list[AccountFigures]) -> tuple[ColumnBook, dict[int, dict[str, object]]]:
    book = ColumnBook()
    for columns in FigureColumns.runs(figures):
        book.apply(columns)
    rows = {r["login"]: r for r in book.rows(("login", "group", "book", "currency", "profit", "margin_level",
                                              "state", "equity", "margin"))}
    return book, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=calls(), group=st.sampled_from(["", "real\\a"]), book_filter=st.sampled_from(["", "A", "B"]),
       currency=st.sampled_from(["", "EUR"]))
def test_drill_rows_sum_to_each_symbols_net(batches: list[list[AccountFigures]], group: str, book_filter: str,
                                           currency: str) -> None:
    book = ColumnBook()
    latest: dict[int, AccountFigures] = {}
    for batch in batches:
        for columns in FigureColumns.runs(batch):
            book.apply(columns)
        latest.update((f.login, f) for f in batch)
    answer = book.exposure_entries()
    rows = {r["login"]: r for r in book.rows(("login", "group", "book", "currency"))}
    # no filter: every symbol's net is the book's own (the object reference's, to the cent)
    reference = {e.symbol: e for e in book_from_accounts(latest.values()).exposure}
    nets = desk.exposure_by_symbol(answer, rows, desk.Filters(), {})
    assert set(reference) <= {n.symbol for n in nets}
    for net in nets:
        sums = answer["sums"].get(net.symbol, [0, 0, 0, 0])  # accounts that cancel out: no book entry
        assert [net.lots["A"], net.cents["A"], net.lots["B"], net.cents["B"]] == sums
        assert sum(a[1] for a in net.accounts) == net.net_lots
        assert sum(a[2] for a in net.accounts) == net.net_cents
        if net.symbol in reference:
            assert net.net_cents / 100 == pytest.approx(reference[net.symbol].usd_notional, abs=1e-6)
            assert net.net_lots / LOT == pytest.approx(reference[net.symbol].net_lots, abs=1e-9)
    # filtered: the rows kept are exactly the accounts that pass, and still sum to the net shown
    filters = desk.Filters(group=group, book=book_filter, currency=currency)
    for net in desk.exposure_by_symbol(answer, rows, filters, {}):
        for login, _units, _cents, entry_book in net.accounts:
            row = latest[login]
            assert not group or row.group == group
            assert not currency or row.currency == currency
            assert not book_filter or entry_book == book_filter == row.book
        assert sum(a[1] for a in net.accounts) == net.net_lots
        assert sum(a[2] for a in net.accounts) == net.net_cents
        expected = sum(round(e.usd_notional * 100) for f in latest.values() if filters.keeps(
            {"login": f.login, "group": f.group, "book": f.book, "currency": f.currency}, {})
            for e in f.exposure if e.symbol == net.symbol)
        assert abs(net.net_cents - expected) <= len(net.accounts)  # half-cent ties aside, the same


def test_server_filter_keeps_the_connections_accounts() -> None:
    figures = list(SimulatedBroker(accounts=12, seed=5, warmup=300.0).figures())
    _book_, rows = _book(figures)
    answer = _book_.exposure_entries()
    first = {f.login for f in figures[:6]}
    server_of = {f.login: "srv-1" if f.login in first else "srv-2" for f in figures}
    one = desk.exposure_by_symbol(answer, rows, desk.Filters(server="srv-1"), server_of)
    two = desk.exposure_by_symbol(answer, rows, desk.Filters(server="srv-2"), server_of)
    every = {n.symbol: n for n in desk.exposure_by_symbol(answer, rows, desk.Filters(), server_of)}
    assert all(a[0] in first for n in one for a in n.accounts)
    assert all(a[0] not in first for n in two for a in n.accounts)
    for symbol, net in every.items():
        parts = [n for n in (*one, *two) if n.symbol == symbol]
        assert sum(p.net_cents for p in parts) == net.net_cents
        assert sum(p.net_lots for p in parts) == net.net_lots


def test_exposure_by_currency_splits_pairs_and_prices_assets() -> None:
    nets = [desk.SymbolNet("EURUSD", cents={"A": 0, "B": 100_000}),
            desk.SymbolNet("XAUUSD", cents={"A": 0, "B": -40_00}),
            desk.SymbolNet("DE40", cents={"A": 2_500, "B": 0}),
            desk.SymbolNet("USDJPY", cents={"A": 0, "B": 7_00}),
            desk.SymbolNet("US500", cents={"A": 0, "B": 3_00})]
    currencies = {"EURUSD": ("EUR", "USD"), "XAUUSD": ("XAU", "USD"), "DE40": ("EUR", "EUR"),
                  "USDJPY": ("USD", "JPY"), "US500": ("US500", "USD")}
    got = dict(desk.exposure_by_currency(nets, currencies))
    assert got == {"EUR": 100_000 + 2_500, "USD": -100_000 + 40_00 + 7_00 + 3_00, "XAU": -40_00,
                   "JPY": -7_00}
    assert desk.currency_legs("UNKNOWN", {}) == ("UNKNOWN", None)


def test_closest_to_stop_out_ranks_by_margin_level() -> None:
    rows = [{"login": 3, "margin_level": 180.0}, {"login": 1, "margin_level": None},
            {"login": 2, "margin_level": 55.5}, {"login": 4, "margin_level": 55.5},
            {"login": 5, "margin_level": 900.0}]
    assert [r["login"] for r in desk.closest_to_stop_out(rows, limit=3)] == [2, 4, 3]


def test_margin_call_entries_count_each_entry_once() -> None:
    def rows(**states: str) -> list[dict[str, object]]:
        return [{"login": int(login[1:]), "state": state} for login, state in states.items()]

    # the first book a tab sees is the baseline: accounts already in margin call are not news
    called, entered = desk.margin_call_entries(None, rows(a1="margin_call", a2="ok", a3="ok"))
    assert (called, entered) == (frozenset({1}), [])
    # 3 and 2 enter (stop-out straight from ok is an entry too); 1 stays: no new entry
    called, entered = desk.margin_call_entries(
        called, rows(a1="margin_call", a2="stop_out", a3="margin_call"))
    assert entered == [2, 3]
    # still there, or going on to stop-out: nothing new
    called, entered = desk.margin_call_entries(called, rows(a1="stop_out", a2="stop_out", a3="margin_call"))
    assert entered == []
    # 1 recovers, then falls back: a new entry
    called, entered = desk.margin_call_entries(called, rows(a1="ok", a2="stop_out", a3="margin_call"))
    assert entered == []
    called, entered = desk.margin_call_entries(
        called, rows(a1="margin_call", a2="stop_out", a3="margin_call"))
    assert entered == [1]


def test_minor_text_is_exact() -> None:
    assert desk.minor_text(123456) == "1,234.56"
    assert desk.minor_text(-5) == "-0.05"
    assert desk.minor_text(0) == "0.00"
    assert desk.minor_text(10**17 + 1) == "1,000,000,000,000,000.01"  # beyond a float's exact cents
    assert desk.lots_text(150 * LOT // 100) == "1.50"


@pytest.fixture(scope="module")
def tenant(database: str) -> int:
    with session_scope(database) as session:
        row = Tenant(name="Desk Today")
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def _deal(tenant_id: int, login: int, ticket: int, at: datetime, kind: str,
          **values: float | str) -> DealRecord:
    return DealRecord(tenant_id=tenant_id, login=login, ticket=ticket, executed_at=at, kind=kind,
                      entry=str(values.pop("entry", "out")), **values)  # type: ignore[arg-type]


def test_today_per_currency_and_book_from_the_deal_log(database: str, tenant: int) -> None:
    midnight = desk.start_of_day(datetime(2026, 12, 7, 15, 30, tzinfo=UTC))
    before = midnight - timedelta(seconds=1)
    hour = timedelta(hours=1)
    with tenant_session(database, tenant) as db:
        db.add_all([
            _deal(tenant, 101, 1, midnight + hour, "buy", entry="in", volume=1.5, commission=-3.5),
            _deal(tenant, 101, 2, midnight + 2 * hour, "sell", volume=1.5, profit=120.1, swap=-1.2,
                  commission=-3.5),
            _deal(tenant, 101, 3, midnight + 3 * hour, "balance", entry="in", amount=1000.0),
            _deal(tenant, 102, 4, midnight + 4 * hour, "balance", entry="in", amount=-250.55),
            _deal(tenant, 102, 5, midnight + 5 * hour, "buy", volume=0.01, profit=-0.07),
            _deal(tenant, 103, 6, midnight + 6 * hour, "sell", volume=2.0, profit=50.0),
            _deal(tenant, 101, 7, before, "buy", volume=9.0, profit=999.0),  # yesterday: not today's
            _deal(tenant, 101, 8, midnight + 7 * hour, "credit", entry="in", amount=500.0),  # not money
            _deal(tenant, 999, 9, midnight + 8 * hour, "sell", volume=1.0, profit=7.0),  # not in book
        ])
    deals = desk.deals_today(database, tenant, midnight)
    assert deals[101] == {"closed": -350 + 12010 - 120 - 350, "deposits": 100000, "withdrawals": 0,
                          "volume": 300 * LOT // 100}
    assert deals[102] == {"closed": -7, "deposits": 0, "withdrawals": -25055, "volume": LOT // 100}
    rows = [
        {"login": 101, "currency": "USD", "book": "B", "profit": 10.01},
        {"login": 102, "currency": "USD", "book": "A", "profit": -0.02},
        {"login": 103, "currency": "EUR", "book": "B", "profit": 0.1},
        {"login": 104, "currency": "USD", "book": "B", "profit": 0.3},
    ]
    usd, eur = desk.today_by_currency(rows, deals)
    assert (usd.currency, usd.accounts, eur.currency) == ("USD", 3, "EUR")
    assert usd.closed == {"A": -7, "B": 11190}
    assert usd.floating == {"A": -2, "B": 1031}
    assert usd.total("B") == 11190 + 1031
    assert (usd.deposits, usd.withdrawals, usd.volume) == (100000, -25055, 301 * LOT // 100)
    assert eur.closed == {"A": 0, "B": 5000}
    assert eur.floating == {"A": 0, "B": 10}
    # another tenant's deals never count (row-level security and the tenant filter)
    assert desk.deals_today(database, tenant + 10_000, midnight) == {}


def test_movements_lists_deposits_and_withdrawals(database: str, tenant: int) -> None:
    moved = desk.movements(database, tenant, 102)
    assert [(m["ticket"], m["amount"]) for m in moved] == [(4, -25055)]
    assert [m["ticket"] for m in desk.movements(database, tenant, 101)] == [3]


def test_table_csv_is_the_table_as_shown() -> None:
    rows = [{"login": "7", "equity": "1,234.50", "state": "margin call"}, {"login": "3", "equity": "-2.00"}]
    text = desk.table_csv(["Login", "Equity", "State"], ["login", "equity", "state"], rows)
    assert list(csv.reader(io.StringIO(text))) == [
        ["Login", "Equity", "State"], ["7", "1,234.50", "margin call"], ["3", "-2.00", ""]]


def test_account_detail_carries_current_prices_and_position_summary() -> None:
    broker = SimulatedBroker(accounts=6, seed=3, warmup=600.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    actors = [AccountActor(s, symbols, board) for s in broker.accounts()]
    holder = next(a for a in actors if a.state.positions())
    detail = holder.detail()
    position = detail.positions[0]
    bid, ask = detail.quotes[position.symbol]
    assert 0 < bid <= ask
    assert bid == holder.state.quote(position.symbol).bid  # type: ignore[union-attr]
    summary = desk.position_summary(detail.positions, detail.profits, position.symbol)
    mine = [p for p in detail.positions if p.symbol == position.symbol]
    assert summary["positions"] == len(mine)
    assert summary["volume"] == sum(round(p.volume * LOT) for p in mine)
    buys = [p for p in mine if p.side == Side.BUY]
    if buys:
        weighted = sum(p.volume * p.price_open for p in buys) / sum(p.volume for p in buys)
        assert summary["buy_price"] == pytest.approx(weighted)


def test_stop_out_distance_of_the_largest_position() -> None:
    """Equity 1,500 with margin 2,000 at a 50% stop-out: 500 of room; a long EURUSD of USD 100,000
    notional (the largest) may fall 0.5% from its mid before the account is stopped out."""
    figures = type("F", (), {"equity": 1500.0, "usd_rate": 1.0, "exposure": (
        SymbolExposure("XAUUSD", -0.01, -2_300.0), SymbolExposure("EURUSD", 1.0, 100_000.0))})()
    got = desk.stop_out_distance(figures, 2000.0 * 50 / 100, {"EURUSD": (1.0999, 1.1001)})
    assert got is not None
    assert (got["symbol"], got["long"]) == ("EURUSD", True)
    assert got["fraction"] == pytest.approx(0.005)
    assert got["price"] == pytest.approx(1.1 * 0.995)
    short = type("F", (), {"equity": 1500.0, "usd_rate": 1.0,
                           "exposure": (SymbolExposure("EURUSD", -1.0, -100_000.0),)})()
    against = desk.stop_out_distance(short, 1000.0, {"EURUSD": (1.0999, 1.1001)})
    assert against is not None
    assert against["price"] == pytest.approx(1.1055)  # a short is stopped out by a rise
    # a long whose notional is smaller than the room: even a fall to zero does not stop it out
    small = type("F", (), {"equity": 1500.0, "usd_rate": 1.0,
                           "exposure": (SymbolExposure("EURUSD", 0.001, 110.0),)})()
    alone = desk.stop_out_distance(small, 1000.0, {"EURUSD": (1.0999, 1.1001)})
    assert alone is not None
    assert alone["fraction"] > 1
    assert alone["price"] is None
    assert desk.stop_out_distance(figures, None, {"EURUSD": (1.0, 1.0)}) is None  # no margin in use
    assert desk.stop_out_distance(figures, 1000.0, {}) is None  # no price for it


def test_stop_out_equity_follows_the_groups_mode() -> None:
    broker = SimulatedBroker(accounts=6, seed=3, warmup=600.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    for snapshot in broker.accounts():
        actor = AccountActor(snapshot, symbols, board)
        figures = actor.state.figures()
        level = actor.state.stop_out_equity()
        if figures.margin <= 0:
            assert level is None
        elif snapshot.stopout_mode.value == "percent":
            assert level == pytest.approx(figures.margin * snapshot.stop_out / 100)
        assert actor.detail().stop_out_equity == level
