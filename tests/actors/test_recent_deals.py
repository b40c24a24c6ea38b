"""An account keeps its most recent deals for its page: newest first, bounded, and through the
checkpoints and resyncs its supervisor takes it through (no Ray: the actor's logic in-process)."""

from __future__ import annotations

from actors.mt5_account import RECENT_DEALS, AccountActor, Step
from veles.mt5.simulator import SimulatedBroker
from veles.risk.events import Deal, DealKind


def _host(seed: int = 5) -> tuple[AccountActor, SimulatedBroker]:
    broker = SimulatedBroker(accounts=1, seed=seed, start_msc=1_790_000_000_000, warmup=0.0)
    symbols = {s.name: s for s in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    return AccountActor(broker.accounts()[0], symbols, board), broker


def _deposits(host: AccountActor, first: int, count: int) -> list[Deal]:
    deals = [Deal(ticket=first + n, login=host.login, kind=DealKind.BALANCE, time_msc=1_790_000_000_000 + n,
                  amount=10.0, comment="deposit") for n in range(count)]
    for deal in deals:
        host.apply(Step(deals=(deal,)))
    return deals


def test_the_newest_deals_come_first_and_only_the_last_fifty_are_kept() -> None:
    host, _ = _host()
    assert host.detail().deals == ()
    deals = _deposits(host, 60_000_000, RECENT_DEALS + 10)
    shown = host.detail().deals
    assert [d.ticket for d in shown] == [d.ticket for d in reversed(deals)][:RECENT_DEALS]


def test_refused_deals_are_not_listed() -> None:
    host, _ = _host()
    (kept,) = _deposits(host, 60_000_000, 1)
    update = host.apply(Step(deals=(kept,)))  # the same ticket again: refused by the account
    assert update.rejected
    assert host.detail().deals == (kept,)


def test_simulated_trades_are_listed_as_applied() -> None:
    host, broker = _host(seed=3)  # this seed's trader deals three times within 80 simulated seconds
    applied: list[Deal] = []
    for _ in range(800):
        batch = broker.poll()
        mine = tuple(d for d in batch.deals if d.login == host.login)
        applied.extend(host.apply(Step(batch.quotes, mine)).deals)
        if len(applied) >= 3:
            break
    assert len(applied) >= 3, "the simulated trader did not deal three times in 200 simulated seconds"
    assert list(host.detail().deals) == list(reversed(applied))
    assert all(d.kind in (DealKind.BUY, DealKind.SELL, DealKind.BALANCE) for d in applied)


def test_a_restore_and_a_resync_keep_the_recent_deals() -> None:
    host, _ = _host()
    deals = _deposits(host, 60_000_000, 3)
    checkpoint = host.checkpoint()
    later = _deposits(host, 60_000_003, 2)

    restored, _ = _host()
    restored.restore(checkpoint, [Step(deals=(d,)) for d in later])  # checkpoint + the log since
    assert restored.detail().deals == host.detail().deals == tuple(reversed(deals + later))

    fresh, _ = _host()  # what a supervisor re-attaching builds from the gateway's snapshot
    restored.resync(fresh.checkpoint())
    assert restored.detail().deals == tuple(reversed(deals + later))


def test_the_detail_carries_the_digits_of_every_symbol_of_its_server() -> None:
    """The page shows prices as the terminal does: each symbol's own digits, not a fixed five; a
    statement's older deals may name symbols the account no longer holds, so every symbol the
    server lists is there."""
    host, broker = _host(seed=3)
    specs = {s.name: s for s in broker.symbols()}
    for _ in range(800):
        batch = broker.poll()
        host.apply(Step(batch.quotes, tuple(d for d in batch.deals if d.login == host.login)))
        if host.detail().deals:
            break
    detail = host.detail()
    named = {p.symbol for p in detail.positions} | {d.symbol for d in detail.deals if d.symbol}
    assert named, "the simulated trader neither held nor dealt anything"
    assert named <= detail.digits.keys()
    assert detail.digits == {name: spec.digits for name, spec in specs.items()}
