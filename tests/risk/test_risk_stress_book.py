"""The live book as a stress starts from it: an account's current snapshot rebuilds the same
figures, and a book of several connections is each connection stressed at its own quotes."""

from __future__ import annotations

from veles.bench.stress import simulated_book
from veles.risk.account import AccountState
from veles.risk.events import Deal, DealEntry, DealKind
from veles.risk.stress import BookPart, book_symbols, parse_scenario, run_stress, stress_book


def test_an_account_snapshot_rebuilds_its_figures_after_deals() -> None:
    snapshots, symbols, quotes = simulated_book(40, 3)
    account = next(s for s in snapshots if len(s.positions) >= 2)
    state = AccountState(account, symbols, quotes)
    position = state.positions()[0]
    quote = quotes[position.symbol]
    price = quote.bid if position.side.value == "buy" else quote.ask
    state.apply_deal(Deal(ticket=state.last_deal_ticket + 1, login=account.login,
                          kind=DealKind.SELL if position.side.value == "buy" else DealKind.BUY,
                          time_msc=1, entry=DealEntry.OUT, symbol=position.symbol, volume=position.volume,
                          price=price, position_id=position.ticket,
                          profit=state.close_profit(position.ticket, position.volume, price)))
    state.apply_deal(Deal(ticket=state.last_deal_ticket + 1, login=account.login, kind=DealKind.BALANCE,
                          time_msc=2, amount=-123.45))
    snapshot = state.snapshot()
    assert len(snapshot.positions) == len(account.positions) - 1
    assert snapshot.last_deal_ticket == state.last_deal_ticket
    now, rebuilt = state.figures(), AccountState(snapshot, symbols, quotes).figures()
    for name in ("balance", "credit", "equity", "profit", "margin", "free_margin", "margin_level", "state"):
        assert getattr(rebuilt, name) == getattr(now, name), name


def test_a_book_of_two_connections_is_each_at_its_own_quotes() -> None:
    first_snaps, first_symbols, first_quotes = simulated_book(30, 1)
    second_snaps, second_symbols, second_quotes = simulated_book(30, 2)
    parts = [BookPart("one", first_symbols, first_quotes, tuple(first_snaps)),
             BookPart("two", second_symbols, second_quotes, tuple(second_snaps), left_out=1)]
    shocks = parse_scenario("all -6%, USD +1% against all", book_symbols(parts))
    together = stress_book(parts, shocks)
    apart = [*run_stress(first_snaps, first_symbols, first_quotes, shocks).accounts,
             *run_stress(second_snaps, second_symbols, second_quotes, shocks).accounts]
    assert together.accounts == apart
    assert set(book_symbols(parts)) == set(first_symbols) | set(second_symbols)
