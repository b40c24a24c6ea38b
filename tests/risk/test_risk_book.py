"""Book: USD totals of mixed-currency accounts, A/B exposure split, state lists and ranking."""

from __future__ import annotations

from dataclasses import replace

from veles.risk.account import AccountFigures, SymbolExposure
from veles.risk.book import Book, book_from_accounts


def _figures(login: int, **changes: object) -> AccountFigures:
    base = AccountFigures(
        login=login,
        group="real",
        book="B",
        currency="USD",
        leverage=100,
        balance=1000.0,
        credit=0.0,
        equity=1100.0,
        profit=100.0,
        margin=200.0,
        free_margin=900.0,
        margin_level=550.0,
        state="ok",
        realized_pnl=0.0,
        peak_equity=1100.0,
        drawdown=0.0,
        positions=1,
        exposure=(SymbolExposure("EURUSD", 1.0, 110_000.0),),
        usd_rate=1.0,
        risk_score=10.0,
        updated_msc=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_totals_are_in_usd_and_exposure_is_split_by_book() -> None:
    euro = _figures(
        2,
        book="A",
        currency="EUR",
        usd_rate=1.1,
        exposure=(SymbolExposure("EURUSD", -0.5, -55_000.0), SymbolExposure("DE40", 2.0, 39_600.0)),
    )
    book = Book()
    book.apply(_figures(1))
    book.apply(euro)
    snap = book.snapshot()
    assert (snap.accounts, snap.balance, snap.equity, snap.margin) == (2, 2100.0, 2310.0, 420.0)
    eurusd = next(e for e in snap.exposure if e.symbol == "EURUSD")
    assert (eurusd.net_lots, eurusd.usd_notional) == (0.5, 55_000.0)
    assert (eurusd.a_net_lots, eurusd.b_net_lots) == (-0.5, 1.0)
    assert [e.symbol for e in snap.exposure] == ["EURUSD", "DE40"]  # largest |USD notional| first
    assert snap == book_from_accounts([_figures(1), euro])


def test_apply_replaces_and_remove_subtracts() -> None:
    book = Book()
    book.apply(_figures(1))
    book.apply(_figures(1, equity=900.0, exposure=(SymbolExposure("XAUUSD", 1.0, 230_000.0),)))
    snap = book.snapshot()
    assert snap.accounts == 1
    assert snap.equity == 900.0
    assert [e.symbol for e in snap.exposure] == ["XAUUSD"]
    book.apply(_figures(1, book="A", equity=900.0, exposure=(SymbolExposure("XAUUSD", 1.0, 230_000.0),)))
    (xau,) = book.snapshot().exposure
    assert (xau.a_net_lots, xau.b_net_lots) == (1.0, 0.0)
    book.remove(1)
    book.remove(1)
    empty = book.snapshot()
    assert (empty.accounts, empty.equity, empty.exposure) == (0, 0.0, ())


def test_reordered_exposure_of_the_same_length() -> None:
    first = _figures(
        1, exposure=(SymbolExposure("EURUSD", 1.0, 110_000.0), SymbolExposure("XAUUSD", 1.0, 2e5))
    )
    book = Book()
    book.apply(first)
    moved = (first.exposure[0], SymbolExposure("GBPUSD", -2.0, -250_000.0))
    book.apply(replace(first, exposure=moved))
    swapped = (SymbolExposure("GBPUSD", -2.0, -250_000.0), SymbolExposure("EURUSD", 0.5, 55_000.0))
    last = replace(first, exposure=swapped)
    book.apply(last)
    assert book.snapshot() == book_from_accounts([last])
    assert {e.symbol: e.net_lots for e in book.snapshot().exposure} == {"GBPUSD": -2.0, "EURUSD": 0.5}


def test_state_lists_and_top_risky() -> None:
    accounts = [
        _figures(1, state="margin_call", risk_score=80.0),
        _figures(2, state="stop_out", risk_score=100.0),
        _figures(3, risk_score=5.0),
        _figures(4, state="margin_call", risk_score=80.0),
    ]
    book = Book()
    for figures in accounts:
        book.apply(figures)
    snap = book.snapshot(top_n=3)
    assert snap.margin_call == (1, 4)
    assert snap.stop_out == (2,)
    assert [f.login for f in snap.top_risky] == [2, 1, 4]


def test_many_updates_do_not_drift() -> None:
    """Ten thousand replacements of awkward amounts still equal the from-scratch sum exactly."""
    book = Book()
    latest: dict[int, AccountFigures] = {}
    for step in range(10_000):
        login = step % 37
        figures = _figures(
            login,
            equity=round(1000.0 + step * 0.37 % 113.1, 2),
            usd_rate=1.0 + (step % 7) / 3.0,
            exposure=(SymbolExposure("EURUSD", round(0.01 * (step % 11) - 0.05, 2), step * 0.13 % 7),),
        )
        book.apply(figures)
        latest[login] = figures
    assert book.snapshot() == book_from_accounts(latest.values())
