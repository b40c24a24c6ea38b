"""The columnar book and the columnar alert pass against the object reference.

`ColumnBook` (what the aggregator keeps) must equal `book_from_accounts` of the latest figures to
the cent, its rows must be `account_row` of those figures, and `AlertEngine.on_columns` must give
exactly the alerts (and the ignored count) of `on_account` called figure by figure, whatever the
figures: thresholds crossed both ways, missing margin levels, NaN, unknown states, missing
quotes, a login twice in one call, accounts leaving the book.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.wire import ACCOUNT_FIELDS, account_row
from veles.risk.account import AccountFigures, SymbolExposure
from veles.risk.alerts import AlertEngine, AlertKind, AlertRule, Severity, default_rules
from veles.risk.book import book_from_accounts
from veles.risk.columns import ColumnBook, FigureColumns, to_minor_array
from veles.risk.money import to_minor

SYMBOLS = ("EURUSD", "GBPUSD", "XAUUSD", "USDJPY", "BTCUSD")
RULES = [
    *default_rules(100.0, 50.0),
    AlertRule("ml_70", AlertKind.MARGIN_LEVEL, 70.0, Severity.WARNING, band=0.1),
    AlertRule("loss_500", AlertKind.FLOATING_LOSS, 500.0, Severity.WARNING),
    AlertRule("dd_10", AlertKind.DRAWDOWN, 0.10, Severity.INFO, min_interval_s=1.0),
]

money = st.floats(-1e7, 1e7, allow_nan=False).map(lambda v: round(v, 2))


@st.composite
def figures(draw: st.DrawFn, login: int, msc: int) -> AccountFigures:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=4))
    level = draw(st.one_of(st.none(), st.floats(0.0, 400.0), st.just(math.nan)))
    return AccountFigures(
        login=login, group=draw(st.sampled_from(["real\\a", "real\\b"])), book=draw(st.sampled_from("AB")),
        currency=draw(st.sampled_from(["USD", "EUR", "JPY"])), leverage=100,
        balance=draw(money), credit=draw(money), equity=draw(money), profit=draw(money), margin=draw(money),
        free_margin=draw(money), margin_level=level,
        state=draw(st.sampled_from(["ok", "margin_call", "stop_out", "weird"])),
        realized_pnl=0.0, peak_equity=0.0,
        drawdown=draw(st.one_of(st.floats(0.0, 1.0), st.just(math.nan))),
        positions=draw(st.integers(0, 50)),
        exposure=tuple(SymbolExposure(s, draw(st.floats(-50, 50)).__round__(4),
                                      draw(st.floats(-5e6, 5e6))) for s in symbols),
        usd_rate=draw(st.sampled_from([1.0, 1.0843, 0.0067, 1.27])),
        risk_score=draw(st.floats(0.0, 100.0)), updated_msc=msc,
        missing_quotes=draw(st.sampled_from([(), ("USDJPY",)])) if draw(st.booleans()) else (),
        name=draw(st.sampled_from(["", "Anna Adler", "Chen Costa"])),
        country=draw(st.sampled_from(["", "DE"])),
        server=draw(st.sampled_from(["sim-1", "conn-2"])),
    )


@st.composite
def calls(draw: st.DrawFn) -> list[list[AccountFigures]]:
    out = []
    for call in range(draw(st.integers(1, 8))):
        logins = draw(st.lists(st.integers(1, 12), min_size=0, max_size=10))
        out.append([draw(figures(login, 1_000 * (call + 1) + n)) for n, login in enumerate(logins)])
    return out


def _comparable(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """NaN never equals itself: spelled out so rows holding it can be compared."""
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
            for row in rows]


def _without_ranking(book: object) -> object:
    return replace(book, top_risky=())  # type: ignore[type-var]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=calls(), leave=st.lists(st.integers(1, 12), max_size=3), leave_after=st.integers(0, 7))
def test_columns_equal_the_object_book_and_alerts(
    batches: list[list[AccountFigures]], leave: list[int], leave_after: int
) -> None:
    book = ColumnBook()
    objects = AlertEngine(RULES, cooldown_s=5.0)
    columnar = AlertEngine(RULES, cooldown_s=5.0)
    latest: dict[int, AccountFigures] = {}
    for index, batch in enumerate(batches):
        expected = [alert for fig in batch for alert in objects.on_account(fig)]
        got = []
        for columns in FigureColumns.runs(batch):
            book.apply(columns)
            got.extend(columnar.on_columns(columns))
        assert got == expected
        assert columnar.ignored == objects.ignored
        latest.update((fig.login, fig) for fig in batch)
        if index == leave_after:
            book.remove(leave)
            for login in leave:
                latest.pop(login, None)
        assert _without_ranking(book.figures()) == _without_ranking(book_from_accounts(latest.values()))
        rows = [account_row(f) for f in latest.values()]
        assert _comparable(book.rows(ACCOUNT_FIELDS)) == _comparable(rows)
    assert columnar.active() == objects.active()


@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False), max_size=50))
def test_minor_units_are_rounded_like_to_minor(amounts: list[float]) -> None:
    assert to_minor_array(np.array(amounts, dtype=np.float64)).tolist() == [to_minor(a) for a in amounts]
    for tie in (12.345, -12.345, 0.005, -0.005, 2.675):
        assert to_minor_array(np.array([tie])).tolist() == [to_minor(tie)]


def test_an_amount_too_large_for_exact_cents_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        to_minor_array(np.array([1e300]))
