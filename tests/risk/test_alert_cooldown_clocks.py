"""The cool-down of account alerts survives exposure alerts, whose clock is another.

Found by `veles chaos` (500 accounts): account alerts carry the feed's time (an MT5 server's, or a
simulator's), exposure alerts the wall clock of the book snapshot; an exposure clear purged the
cool-down memory by its clock, which wiped every account's, so a flapping account made a new
alert row at each raise instead of one row with a count."""

from __future__ import annotations

import dataclasses

from tests.actors.support import account_figures
from veles.risk.alerts import AlertEngine, AlertKind, AlertRule, AlertStatus, Severity
from veles.risk.book import BookExposure, BookFigures

FEED_MSC = 1_790_000_000_000  # the feed's clock
WALL_MSC = 1_796_650_000_000  # the book snapshot's, months later


def _book(usd: float) -> BookFigures:
    exposure = (BookExposure("XAUUSD", 10.0, usd, 10.0, usd, 0.0, 0.0),)
    return BookFigures(accounts=1, balance=0.0, credit=0.0, equity=0.0, profit=0.0, margin=0.0,
                       free_margin=0.0, exposure=exposure, margin_call=(), stop_out=(), top_risky=())


def test_an_exposure_clear_does_not_end_an_accounts_cool_down() -> None:
    rules = [AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING),
             AlertRule("exposure", AlertKind.SYMBOL_EXPOSURE, 5_000_000.0)]
    engine = AlertEngine(rules, cooldown_s=30.0)
    base = dataclasses.replace(account_figures(), margin_level=400.0, state="ok")

    def at(offset_s: float, state: str) -> list:
        return engine.on_account(dataclasses.replace(
            base, state=state, updated_msc=FEED_MSC + int(offset_s * 1000)))

    [first] = at(0, "margin_call")
    at(1, "ok")
    assert [a.status for a in engine.on_book(_book(6_000_000.0), WALL_MSC)] == [AlertStatus.RAISED]
    assert [a.status for a in engine.on_book(_book(1_000_000.0), WALL_MSC + 1_000)] == [AlertStatus.CLEARED]
    [again] = at(5, "margin_call")  # within the account's 30 s: folded into the first

    assert again.repeats == 2
    assert again.first == first.time_msc
