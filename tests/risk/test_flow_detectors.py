"""Toxic-flow detectors on hand-built trade sequences: each fires at its threshold and not just
below it, and returns the deals that made it fire."""

from __future__ import annotations

import itertools

import pytest

from veles.mt5.simulator import SimulatedBroker
from veles.risk.events import Deal, DealEntry, DealKind, Quote, Side, merge_batches
from veles.risk.flow.evidence import Label
from veles.risk.flow.monitor import FlowMonitor
from veles.risk.flow.news import Calendar, NewsEvent, NewsRule

T0 = 1_767_261_600_000
_tickets = itertools.count(1_000)


def trade(login: int, side: Side, msc: int, price: float, volume: float = 1.0, *,
          entry: DealEntry = DealEntry.IN, position: int = 0, profit: float = 0.0,
          symbol: str = "EURUSD") -> Deal:
    ticket = next(_tickets)
    kind = DealKind.BUY if side is Side.BUY else DealKind.SELL
    return Deal(ticket, login, kind, msc, entry, symbol, volume, price, position or ticket, profit)


def round_trip(monitor: FlowMonitor, login: int, open_msc: int, hold_ms: int, profit: float = 1.0,
               side: Side = Side.BUY, symbol: str = "EURUSD", volume: float = 1.0) -> tuple[Deal, Deal]:
    opening = trade(login, side, open_msc, 1.1, volume, symbol=symbol)
    closing_side = Side.SELL if side is Side.BUY else Side.BUY
    closing = trade(login, closing_side, open_msc + hold_ms, 1.1, volume, entry=DealEntry.OUT,
                    position=opening.ticket, profit=profit, symbol=symbol)
    monitor.on_deals([opening])
    monitor.on_deals([closing])
    return opening, closing


def finding(monitor: FlowMonitor, login: int, detector: str):  # type: ignore[no-untyped-def]
    return next(f for f in monitor.toxicity(login).findings if f.detector == detector)


# -- scalping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hold_s", "fires"), [(60.0, True), (60.001, False)])
def test_scalping_fires_on_holds_up_to_the_threshold(hold_s: float, fires: bool) -> None:
    monitor = FlowMonitor()
    closes = [round_trip(monitor, 1, T0 + i * 120_000, round(hold_s * 1000))[1] for i in range(8)]
    found = finding(monitor, 1, "scalping")
    assert found.fired is fires
    if fires:
        assert found.tickets == tuple(d.ticket for d in closes)
        assert monitor.toxicity(1).primary is Label.SCALPER
        assert found.numbers["short_share"] == 1.0


@pytest.mark.parametrize(("long_trades", "fires"), [(8, True), (9, False)])
def test_scalping_needs_half_of_the_trades_short(long_trades: int, fires: bool) -> None:
    monitor = FlowMonitor()
    for i in range(8):
        round_trip(monitor, 1, T0 + i * 120_000, 5_000)
    for i in range(long_trades):
        round_trip(monitor, 1, T0 + 2_000_000 + i * 1_000_000, 600_000)
    assert finding(monitor, 1, "scalping").fired is fires


def test_scalping_needs_a_minimum_of_short_trades() -> None:
    monitor = FlowMonitor()
    for i in range(7):
        round_trip(monitor, 1, T0 + i * 120_000, 5_000)
    assert not finding(monitor, 1, "scalping").fired
    round_trip(monitor, 1, T0 + 7 * 120_000, 5_000)
    assert finding(monitor, 1, "scalping").fired


# -- latency arbitrage ---------------------------------------------------------------------------


def stale_entries(monitor: FlowMonitor, login: int, count: int, fill_offset: float) -> list[Deal]:
    """Buys filled `fill_offset` below the current bid (negative: above it)."""
    deals = []
    for i in range(count):
        msc = T0 + i * 300_000
        monitor.on_quotes([Quote("EURUSD", 1.1010, 1.1012, msc)])
        deal = trade(login, Side.BUY, msc, 1.1010 - fill_offset)
        monitor.on_deals([deal])
        monitor.advance(msc + 61_000)
        deals.append(deal)
    return deals


def test_latency_fires_on_entries_at_a_price_the_market_left() -> None:
    monitor = FlowMonitor()
    deals = stale_entries(monitor, 1, 3, fill_offset=0.0005)
    found = finding(monitor, 1, "latency_arbitrage")
    assert found.fired
    assert found.tickets == tuple(d.ticket for d in deals)
    assert found.numbers["stale_entries"] == 3
    assert monitor.toxicity(1).primary is Label.LATENCY_ARB
    assert monitor.toxicity(1).score == 100.0


def test_latency_does_not_fire_on_fills_at_the_quote() -> None:
    monitor = FlowMonitor()
    stale_entries(monitor, 1, 10, fill_offset=-0.0002)  # bought at the ask: ordinary
    found = finding(monitor, 1, "latency_arbitrage")
    assert not found.fired
    assert found.numbers["toxic_fills"] == 0
    assert found.numbers["markout_1s_spreads"] == pytest.approx(-0.5)


@pytest.mark.parametrize(("count", "fires"), [(3, True), (2, False)])
def test_latency_needs_a_minimum_of_toxic_fills(count: int, fires: bool) -> None:
    monitor = FlowMonitor()
    stale_entries(monitor, 1, count, fill_offset=0.0005)
    found = finding(monitor, 1, "latency_arbitrage")
    assert found.numbers["toxic_fills"] == count
    assert found.fired is fires


@pytest.mark.parametrize(("ordinary", "fires"), [(9, True), (10, False)])
def test_latency_needs_a_share_of_toxic_fills(ordinary: int, fires: bool) -> None:
    monitor = FlowMonitor()
    stale_entries(monitor, 1, 3, fill_offset=0.0005)
    for i in range(ordinary):
        msc = T0 + 10_000_000 + i * 300_000
        monitor.on_quotes([Quote("EURUSD", 1.1010, 1.1012, msc)])
        monitor.on_deals([trade(1, Side.BUY, msc, 1.1012)])
        monitor.advance(msc + 61_000)
    assert finding(monitor, 1, "latency_arbitrage").fired is fires  # 3 of 12 is 25%


@pytest.mark.parametrize(("after_ms", "toxic"), [(1_000, True), (1_001, False)])
def test_markout_counts_a_fill_the_client_could_close_at_a_profit_within_one_second(
    after_ms: int, toxic: bool
) -> None:
    monitor = FlowMonitor()
    monitor.on_quotes([Quote("EURUSD", 1.1010, 1.1012, T0)])
    deal = trade(1, Side.BUY, T0, 1.1012)
    monitor.on_deals([deal])
    monitor.on_quotes([Quote("EURUSD", 1.1020, 1.1022, T0 + after_ms)])
    monitor.advance(T0 + 1_000)
    monitor.advance(T0 + 70_000)
    found = finding(monitor, 1, "latency_arbitrage")
    assert found.numbers["toxic_fills"] == (1 if toxic else 0)
    assert found.numbers["markout_60s_spreads"] == pytest.approx(4.5)  # mid 1.1021 - 1.1012


# -- martingale and grid -------------------------------------------------------------------------


def basket(
    monitor: FlowMonitor, login: int, legs: list[tuple[float, float]], side: Side = Side.BUY
) -> list[Deal]:
    deals = [trade(login, side, T0 + i * 60_000, price, lots) for i, (price, lots) in enumerate(legs)]
    monitor.on_deals(deals)
    return deals


def test_martingale_fires_on_doubling_into_a_loss() -> None:
    monitor = FlowMonitor()
    deals = basket(monitor, 1, [(1.1000, 1.0), (1.0990, 2.0), (1.0980, 4.0), (1.0970, 8.0)])
    found = finding(monitor, 1, "martingale_grid")
    assert found.fired
    assert found.tickets == tuple(d.ticket for d in deals[1:])
    assert found.numbers["escalating_adds"] == 3
    assert found.numbers["max_basket_depth"] == 4
    assert monitor.toxicity(1).primary is Label.MARTINGALE_GRID


def test_grid_fires_on_equal_lots_at_steps_against_the_move() -> None:
    monitor = FlowMonitor()
    basket(monitor, 1, [(1.2000, 0.5), (1.2010, 0.5), (1.2020, 0.5), (1.2030, 0.5)], side=Side.SELL)
    assert finding(monitor, 1, "martingale_grid").fired


def test_martingale_needs_a_basket_three_entries_deep() -> None:
    monitor = FlowMonitor()
    basket(monitor, 1, [(1.1000, 1.0), (1.0990, 2.0)])
    assert not finding(monitor, 1, "martingale_grid").fired  # one add, depth 2
    basket(monitor, 1, [(1.0980, 4.0)])
    assert finding(monitor, 1, "martingale_grid").fired  # two adds, depth 3


@pytest.mark.parametrize("legs", [
    [(1.1000, 1.0), (1.1010, 2.0), (1.1020, 4.0), (1.1030, 8.0)],  # adding to a winner
    [(1.1000, 1.0), (1.0990, 1.1), (1.0980, 1.2), (1.0970, 1.3)],  # neither doubling nor equal
])
def test_martingale_does_not_fire_on_pyramiding_or_random_sizes(legs: list[tuple[float, float]]) -> None:
    monitor = FlowMonitor()
    basket(monitor, 1, legs)
    assert not finding(monitor, 1, "martingale_grid").fired


def test_a_closed_basket_starts_afresh() -> None:
    monitor = FlowMonitor()
    first = basket(monitor, 1, [(1.1000, 1.0), (1.0990, 2.0)])
    for deal in first:
        monitor.on_deals([trade(1, Side.SELL, T0 + 200_000, 1.1, deal.volume, entry=DealEntry.OUT,
                                position=deal.ticket)])
    basket(monitor, 1, [(1.0980, 4.0), (1.0970, 8.0)])
    found = finding(monitor, 1, "martingale_grid")
    assert found.numbers["max_basket_depth"] == 2  # the second basket's first entry is no add
    assert found.numbers["averaging_adds"] == 2
    assert found.numbers["adds_in_deep_baskets"] == 0  # never three entries deep...
    assert found.fired  # ...but both stacked entries averaged into the loss (the shallow route)


def close_all(monitor: FlowMonitor, deals: list[Deal], msc: int) -> None:
    for deal in deals:
        side = Side.SELL if deal.kind is DealKind.BUY else Side.BUY
        monitor.on_deals([trade(deal.login, side, msc, 1.1, deal.volume, entry=DealEntry.OUT,
                                position=deal.ticket, symbol=deal.symbol)])


@pytest.mark.parametrize(("baskets", "lots", "fires"), [
    (2, 2.0, True), (1, 2.0, False), (2, 1.0, True), (1, 1.0, False), (3, 1.2, False),
])
def test_martingale_and_grid_fire_on_adds_in_shallow_baskets(baskets: int, lots: float, fires: bool) -> None:
    """A martingale or grid whose baskets take profit after one add (a wide step, a quick
    retracement) multiplies its lots (or keeps them equal) a step against it in every one: three
    such adds, each made onto open exposure at a worse price, fire without a basket three entries
    deep; lots neither multiplied nor equal are not averaging."""
    monitor = FlowMonitor()
    for n in range(baskets):
        start = T0 + n * 600_000
        legs = [trade(1, Side.BUY, start, 1.1000, 1.0), trade(1, Side.BUY, start + 60_000, 1.0990, lots)]
        monitor.on_deals(legs)
        close_all(monitor, legs, start + 120_000)
    found = finding(monitor, 1, "martingale_grid")
    assert found.numbers["escalating_adds"] == (baskets if lots >= 1.3 else 0)
    assert found.numbers["averaging_adds"] == (0 if lots == 1.2 else baskets)
    assert found.numbers["max_basket_depth"] == (1 if lots == 1.2 else 2)
    assert found.fired is fires


@pytest.mark.parametrize(("better_stacks", "fires"), [(0, True), (1, False)])
def test_shallow_escalation_needs_nearly_every_stacked_entry_to_average_down(
    better_stacks: int, fires: bool
) -> None:
    """Three escalating adds among four entries onto open exposure (75%) fire; a trader who also
    stacks at a better price as often (3 of 5, 60%) is not averaging into losers."""
    monitor = FlowMonitor()
    for n in range(3):
        start = T0 + n * 600_000
        legs = [trade(1, Side.BUY, start, 1.1000, 1.0), trade(1, Side.BUY, start + 60_000, 1.0990, 2.0)]
        if n < better_stacks + 1 and n > 0:
            legs.append(trade(1, Side.BUY, start + 90_000, 1.1010, 1.0))  # adds to a winner
        monitor.on_deals(legs)
        close_all(monitor, legs, start + 120_000)
    monitor.on_deals([trade(1, Side.BUY, T0 + 3 * 600_000, 1.1000, 1.0),
                      trade(1, Side.BUY, T0 + 3 * 600_000 + 1_000, 1.1010, 1.0)])  # one more stack
    found = finding(monitor, 1, "martingale_grid")
    assert found.numbers["stacked_entries"] == 4 + better_stacks
    assert found.fired is fires


def test_a_deep_basket_fires_however_many_ordinary_trades_are_mixed_in() -> None:
    """Toxic traders mix ordinary trades in: the adds are a small share of all entries (2 of 43,
    under the quarter that fired before) but every entry made onto open exposure averaged into
    the loss."""
    monitor = FlowMonitor()
    for i in range(40):
        opening = trade(1, Side.SELL, T0 - (40 - i) * 600_000, 1.1, 1.0, symbol="USDJPY")
        monitor.on_deals([opening])
        close_all(monitor, [opening], T0 - (40 - i) * 600_000 + 300_000)
    basket(monitor, 1, [(1.1000, 1.0), (1.0990, 2.0), (1.0980, 4.0)])
    found = finding(monitor, 1, "martingale_grid")
    assert (found.numbers["entries"], found.numbers["stacked_entries"], found.numbers["averaging_adds"]) == (
        43, 2, 2)
    assert found.fired


def test_a_deep_basket_among_many_stacked_entries_is_not_martingale() -> None:
    """A scalper's stacked entries sometimes line up as a three-deep averaging basket; with the
    adds under a quarter of its entries and of its stacked entries, it does not fire."""
    monitor = FlowMonitor()
    basket(monitor, 1, [(1.1000, 1.0), (1.0990, 2.0), (1.0980, 4.0)])
    for i in range(7):  # stacked at better prices onto the open basket
        monitor.on_deals([trade(1, Side.BUY, T0 + 300_000 + i * 1_000, 1.1010 + i * 0.0001, 1.0)])
    found = finding(monitor, 1, "martingale_grid")
    assert (found.numbers["entries"], found.numbers["stacked_entries"], found.numbers["averaging_adds"]) == (
        10, 9, 2)
    assert not found.fired


# -- news ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("delay_ms", "symbol", "fires"), [
    (5_000, "EURUSD", True), (5_001, "EURUSD", False), (-2_000, "EURUSD", True),
    (-2_001, "EURUSD", False), (1_000, "USDJPY", False),
])
def test_news_fires_on_entries_in_the_window_on_the_moved_symbols(
    delay_ms: int, symbol: str, fires: bool
) -> None:
    monitor = FlowMonitor()
    deals = []
    for i in range(NewsRule().min_entries):
        event_msc = T0 + i * 600_000
        monitor.on_news([NewsEvent(event_msc, "EUR data", ("EURUSD", "EURJPY"))])
        deal = trade(1, Side.BUY, event_msc + delay_ms, 1.1, symbol=symbol)
        monitor.on_deals([deal])
        deals.append(deal)
    found = finding(monitor, 1, "news")
    assert found.fired is fires
    if fires:
        assert found.tickets == tuple(d.ticket for d in deals)
        assert monitor.toxicity(1).primary is Label.NEWS


def test_calendar_keeps_time_order_when_a_release_is_added_late() -> None:
    calendar = Calendar(NewsRule())
    calendar.add([NewsEvent(T0 + 60_000, "later", ("EURUSD",))])
    calendar.add([NewsEvent(T0, "earlier", ("USDJPY",))])
    found = calendar.around("USDJPY", T0 + 5_000)
    assert found is not None
    assert found.title == "earlier"
    assert calendar.around("USDJPY", T0 + 60_000) is None


@pytest.mark.parametrize(("news_entries", "other_entries", "fires"), [
    (2, 0, True), (1, 0, False), (2, 6, True), (2, 7, False),  # 2 of 8 is >= 25%, 2 of 9 is not
])
def test_news_needs_enough_entries_at_releases_and_a_share_of_all(
    news_entries: int, other_entries: int, fires: bool
) -> None:
    monitor = FlowMonitor()
    for i in range(news_entries):
        event_msc = T0 + i * 600_000
        monitor.on_news([NewsEvent(event_msc, "EUR data", ("EURUSD",))])
        monitor.on_deals([trade(1, Side.BUY, event_msc + 1_000, 1.1)])
    for i in range(other_entries):
        monitor.on_deals([trade(1, Side.BUY, T0 + 10 * 600_000 + i * 120_000, 1.1)])
    assert finding(monitor, 1, "news").fired is fires


@pytest.mark.parametrize(("side", "price", "fires"), [
    (Side.BUY, 1.1011, True), (Side.BUY, 1.1010, False), (Side.SELL, 1.1009, True),
    (Side.SELL, 1.1010, False),
])
def test_news_entries_after_a_release_follow_its_move(side: Side, price: float, fires: bool) -> None:
    """After a release an entry counts when it went the way the price moved: a buy above the mid
    the board showed before the release (1.1010 here), a sell below it."""
    monitor = FlowMonitor()
    for i in range(NewsRule().min_entries):
        event_msc = T0 + i * 600_000
        monitor.on_quotes([Quote("EURUSD", 1.1009, 1.1011, event_msc - 500)])
        monitor.on_news([NewsEvent(event_msc, "EUR data", ("EURUSD",))])
        monitor.on_deals([trade(1, side, event_msc + 1_000, price)])
    assert finding(monitor, 1, "news").fired is fires


def test_the_simulators_batches_carry_its_calendar_to_the_engine() -> None:
    """The live engine learns of releases from the gateway's batches (the supervisor hands
    `Batch.news` to the aggregator's detectors): the simulated broker puts each release in the
    batch of the step it happened in, and batches merged for a consumer that fell behind keep
    every release."""
    broker = SimulatedBroker("news", accounts=3, seed=11, warmup=0.0, news_every=2.0)
    batches = [broker.poll() for _ in range(40)]
    with_news = [b for b in batches if b.news]
    assert len(with_news) >= 2
    assert all(len(b.news) == 1 and b.news[0].symbols for b in with_news)
    assert merge_batches(batches).news == tuple(e for b in batches for e in b.news)
    with pytest.raises(ValueError, match="news_every must be positive"):
        SimulatedBroker("news", accounts=1, news_every=0.0)


# -- hedged pairs and syndicates -----------------------------------------------------------------


@pytest.mark.parametrize(("lag_ms", "ratio", "fires"), [
    (6_000, 1.5, True), (6_001, 1.0, False), (0, 1.51, False),
])
def test_hedged_pair_fires_on_opposite_entries_of_about_the_same_size(
    lag_ms: int, ratio: float, fires: bool
) -> None:
    monitor = FlowMonitor()
    for i in range(4):
        msc = T0 + i * 600_000
        symbol = ("EURUSD", "GBPUSD", "XAUUSD", "US500")[i]
        monitor.on_deals([trade(1, Side.BUY, msc, 1.1, 1.0, symbol=symbol)])
        monitor.on_deals([trade(2, Side.SELL, msc + lag_ms, 1.1, ratio, symbol=symbol)])
    for login, partner in ((1, 2), (2, 1)):
        found = finding(monitor, login, "hedged_pair")
        assert found.fired is fires
        if fires:
            assert found.linked == (partner,)
            assert len(found.tickets) == 4
            assert monitor.toxicity(login).primary is Label.HEDGED_PAIR


@pytest.mark.parametrize(("matches", "fires"), [(4, True), (3, False)])
def test_hedged_pair_needs_a_minimum_of_matched_entries(matches: int, fires: bool) -> None:
    monitor = FlowMonitor()
    for i in range(matches):
        symbol = ("EURUSD", "GBPUSD", "XAUUSD", "US500")[i]
        monitor.on_deals([trade(1, Side.BUY, T0 + i * 600_000, 1.1, 1.0, symbol=symbol)])
        monitor.on_deals([trade(2, Side.SELL, T0 + i * 600_000 + 1_000, 1.1, 1.0, symbol=symbol)])
    assert finding(monitor, 1, "hedged_pair").fired is fires
    assert finding(monitor, 2, "hedged_pair").fired is fires


def test_syndicate_links_a_leader_and_its_followers() -> None:
    monitor = FlowMonitor()
    for i in range(4):
        msc = T0 + i * 600_000
        side = (Side.BUY, Side.SELL)[i % 2]
        symbol = ("EURUSD", "GBPUSD", "XAUUSD", "US500")[i]
        monitor.on_deals([trade(10, side, msc, 1.1, 1.0, symbol=symbol)])
        monitor.on_deals([trade(11, side, msc + 1_000, 1.1, 3.0, symbol=symbol)])
        monitor.on_deals([trade(12, side, msc + 4_000, 1.1, 0.3, symbol=symbol)])
    for login in (10, 11, 12):
        found = finding(monitor, login, "syndicate")
        assert found.fired
        assert set(found.linked) == {10, 11, 12} - {login}
        assert monitor.toxicity(login).primary is Label.SYNDICATE


def test_three_matches_are_not_a_syndicate() -> None:
    monitor = FlowMonitor()
    for i, symbol in enumerate(("EURUSD", "GBPUSD", "XAUUSD")):
        monitor.on_deals([trade(10, Side.BUY, T0 + i * 600_000, 1.1, symbol=symbol)])
        monitor.on_deals([trade(11, Side.BUY, T0 + i * 600_000 + 1_000, 1.1, symbol=symbol)])
    assert not finding(monitor, 10, "syndicate").fired


def test_a_busy_trader_on_the_same_symbol_is_not_a_copier() -> None:
    """An account entering every few seconds matches anyone trading its symbol, but those
    matches are a sliver of its own entries, so neither side is linked."""
    monitor = FlowMonitor()
    for second in range(0, 2_400, 3):
        round_trip(monitor, 99, T0 + second * 1000, 1_000)
        if second % 600 == 0:
            round_trip(monitor, 10, T0 + second * 1000 + 500, 2_000)
    ordinary = finding(monitor, 10, "syndicate")
    assert ordinary.numbers["best_partner_matches"] == 4  # every entry matched the busy one...
    assert ordinary.numbers["best_partner_share"] == 1.0
    assert not ordinary.fired  # ...but 4 of its 800 are no relation
    assert not finding(monitor, 99, "syndicate").fired


@pytest.mark.parametrize(("symbols", "fires"), [(("EURUSD",), False), (("EURUSD", "GBPUSD"), True)])
def test_copies_must_span_two_symbols(symbols: tuple[str, ...], fires: bool) -> None:
    """Two traders of one symbol react to its moves at about the same times; a copier follows
    its leader across what the leader trades."""
    monitor = FlowMonitor()
    for i in range(6):
        symbol = symbols[i % len(symbols)]
        round_trip(monitor, 10, T0 + i * 600_000, 60_000, symbol=symbol)
        round_trip(monitor, 11, T0 + i * 600_000 + 1_000, 60_000, symbol=symbol)
    for login in (10, 11):
        assert finding(monitor, login, "syndicate").fired is fires


@pytest.mark.parametrize(("own_trades", "fires"), [(12, True), (13, False)])
def test_a_follower_that_mixes_its_own_trades_in_is_still_linked(own_trades: int, fires: bool) -> None:
    """The leader's 8 entries, 4 of them copied (half of the side that entered fewer), and the
    follower's 4 copies plus its own trades: linked while the copies are at least a quarter of
    the follower's entries (4 of 16), not below (4 of 17)."""
    monitor = FlowMonitor()
    symbols = ("EURUSD", "GBPUSD", "XAUUSD", "US500")
    for i in range(4):
        msc = T0 + i * 600_000
        round_trip(monitor, 10, msc, 60_000, symbol=symbols[i])
        round_trip(monitor, 11, msc + 1_000, 60_000, symbol=symbols[i])
        round_trip(monitor, 10, msc + 200_000, 60_000, symbol="USDJPY")  # the leader alone
    for i in range(own_trades):  # the follower alone, at other times
        round_trip(monitor, 11, T0 + 3_000_000 + i * 200_000, 60_000, symbol="AUDUSD")
    for login in (10, 11):
        assert finding(monitor, login, "syndicate").fired is fires


@pytest.mark.parametrize("release", [True, False])
def test_entries_at_a_release_are_not_matched_across_accounts(release: bool) -> None:
    monitor = FlowMonitor()
    for i in range(4):
        msc = T0 + i * 600_000
        symbol = ("EURUSD", "EURJPY")[i % 2]
        if release:
            monitor.on_news([NewsEvent(msc, "EUR data", ("EURUSD", "EURJPY"))])
        round_trip(monitor, 10, msc, 60_000, symbol=symbol)
        round_trip(monitor, 11, msc + 500, 60_000, symbol=symbol)
    assert finding(monitor, 10, "syndicate").fired is not release


# -- sharp deals and scores ----------------------------------------------------------------------


@pytest.mark.parametrize(("profit", "fires"), [(80.0, True), (79.0, False)])
def test_sharp_deals_fire_on_profits_far_above_the_accounts_norm(profit: float, fires: bool) -> None:
    monitor = FlowMonitor()
    for i in range(6):
        round_trip(monitor, 1, T0 + i * 600_000, 300_000, profit=10.0 if i % 2 else -10.0)
    sharp = [round_trip(monitor, 1, T0 + (10 + i) * 600_000, 300_000, profit=profit)[1] for i in range(3)]
    found = finding(monitor, 1, "sharp_deals")
    assert found.fired is fires
    if fires:
        assert found.tickets == tuple(d.ticket for d in sharp)
        assert monitor.toxicity(1).primary is Label.ORDINARY  # a sharp deal is evidence, not a label
        assert monitor.toxicity(1).score == 40.0


@pytest.mark.parametrize(("count", "fires"), [(3, True), (2, False)])
def test_sharp_deals_need_a_minimum_of_sharp_trades(count: int, fires: bool) -> None:
    monitor = FlowMonitor()
    for i in range(6):
        round_trip(monitor, 1, T0 + i * 600_000, 300_000, profit=10.0 if i % 2 else -10.0)
    for i in range(count):
        round_trip(monitor, 1, T0 + (10 + i) * 600_000, 300_000, profit=80.0)
    assert finding(monitor, 1, "sharp_deals").fired is fires


def test_an_ordinary_account_scores_low_and_is_labelled_ordinary() -> None:
    monitor = FlowMonitor()
    for i in range(10):
        round_trip(monitor, 1, T0 + i * 900_000, 600_000, profit=(-1) ** i * 25.0)
    toxicity = monitor.toxicity(1)
    assert toxicity.primary is Label.ORDINARY
    assert toxicity.labels == ()
    assert toxicity.score < 20.0
    assert set(toxicity.breakdown()) == {
        "scalping", "latency_arbitrage", "martingale_grid", "news", "sharp_deals", "hedged_pair", "syndicate",
    }


def test_latency_arbitrage_outranks_the_news_and_scalping_it_also_looks_like() -> None:
    monitor = FlowMonitor()
    for i in range(8):
        msc = T0 + i * 300_000
        monitor.on_news([NewsEvent(msc, "EUR data", ("EURUSD",))])
        monitor.on_quotes([Quote("EURUSD", 1.1010, 1.1012, msc)])
        opening = trade(1, Side.BUY, msc, 1.1000)
        monitor.on_deals([opening])
        monitor.on_deals([trade(1, Side.SELL, msc + 2_000, 1.1010, entry=DealEntry.OUT,
                                position=opening.ticket, profit=100.0)])
        monitor.advance(msc + 61_000)
    toxicity = monitor.toxicity(1)
    assert toxicity.labels == (Label.LATENCY_ARB, Label.NEWS, Label.SCALPER)
    assert toxicity.primary is Label.LATENCY_ARB
    assert toxicity.since_msc == T0 + 2 * 300_000


@pytest.mark.parametrize(("alternate", "fires"), [(False, True), (True, False)])
def test_copies_need_the_same_account_to_lead(alternate: bool, fires: bool) -> None:
    """A copier follows its leader every time; two accounts that take turns entering first are
    trading the same market, not copying each other."""
    monitor = FlowMonitor()
    for i, symbol in enumerate(("EURUSD", "GBPUSD", "XAUUSD", "US500")):
        first, second = (11, 10) if alternate and i % 2 else (10, 11)
        round_trip(monitor, first, T0 + i * 600_000, 60_000, symbol=symbol)
        round_trip(monitor, second, T0 + i * 600_000 + 2_000, 60_000, symbol=symbol)
    assert finding(monitor, 10, "syndicate").fired is fires


def test_a_copier_that_starts_after_the_first_entries_is_found_at_a_rescan() -> None:
    """Only an account's first DISCOVER entries and every RESCAN-th are matched against the whole
    window (the rest against known partners only, so a busy book costs O(partners) per entry): a
    copier that starts following later is found at the next rescan and counted from then on,
    and the many chance co-traders of a busy symbol are not kept."""
    from veles.risk.flow.cross import DISCOVER, RESCAN

    monitor = FlowMonitor()
    at = T0
    for _ in range(DISCOVER + 2):  # the leader trades alone first
        round_trip(monitor, 20, at, 60_000)
        at += 600_000
    for i in range(2 * RESCAN):  # then a copier follows every trade, 2 s behind
        symbol = ("EURUSD", "GBPUSD")[i % 2]
        round_trip(monitor, 20, at, 60_000, symbol=symbol)
        round_trip(monitor, 21, at + 2_000, 60_000, symbol=symbol)
        at += 600_000
    assert finding(monitor, 21, "syndicate").fired
    assert 20 in finding(monitor, 21, "syndicate").linked
    scans = monitor.cross.scans
    assert scans < DISCOVER * 2 + 2 * (2 * RESCAN + DISCOVER) // RESCAN + 2  # not one per entry
