"""The Web API gateway against the fake MT5 Web API over real HTTP: its snapshot is the
simulator's, its feed delivers the simulator's deals once each and in order through the faults a
real server shows, the engine it feeds ends equal to the engine fed by the simulator, a slow
server stalls nobody else, and a connection that cannot come back says so."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from actors.mt5_account import AccountActor, Step
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_feed_fake, make_replay_fake, serving
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import GatewayError
from veles.mt5.recording import record
from veles.mt5.replay import ReplayGateway
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.client import WebApiSettings
from veles.mt5.webapi.errors import AuthError
from veles.mt5.webapi.gateway import WebApiGateway
from veles.mt5.webapi.simulated import SimulatedWebApi
from veles.risk.events import AccountSnapshot, Batch, Deal

# The fields the simulator labels its own way: the Web API names the MT5 group (with its currency
# and margin mode, records.group_name), has no A/B-book flag, and the fake's history starts after
# the simulator's warm-up (so no deal of the snapshot is in it to name).
LABELS = ("group", "book", "last_deal_ticket")
START = 1_700_000_000_000
MIDNIGHT = 1_700_006_400_000  # a server midnight: a recorded session across it has a rollover
STEPS = 150


def _settings(url: str, **kwargs: object) -> WebApiSettings:
    return WebApiSettings(url, MANAGER_LOGIN, MANAGER_PASSWORD, **kwargs)  # type: ignore[arg-type]


@contextmanager
def _gateway(url: str, **kwargs: object) -> Iterator[WebApiGateway]:
    gateway = WebApiGateway(_settings(url), "web", **{"interval": 0.02, **kwargs})  # type: ignore[arg-type]
    try:
        yield gateway
    finally:
        gateway.close()


def _same(a: AccountSnapshot, b: AccountSnapshot) -> dict[str, object]:
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
            if f.name not in LABELS and getattr(a, f.name) != getattr(b, f.name)}


def _settle(gateway: WebApiGateway, polls: int = 2) -> None:
    """Wait until the gateway has polled the server `polls` more times (after a driver step)."""
    target = gateway.stats.polls + polls
    deadline = time.monotonic() + 30
    while gateway.stats.polls < target:
        assert gateway.state in ("live", "reconnecting"), gateway.stats.last_error
        assert time.monotonic() < deadline, f"the gateway stopped polling ({gateway.state})"
        time.sleep(0.005)


def test_the_snapshot_is_the_simulators() -> None:
    fake, broker, _ = make_feed_fake(accounts=20)
    with serving(fake) as url, _gateway(url) as gateway:
        assert {s.name: s for s in gateway.symbols()} == {s.name: s for s in broker.symbols()}
        mine = {a.login: a for a in gateway.accounts()}
        books = broker.accounts()
        assert sorted(mine) == sorted(a.login for a in books)
        assert sum(len(a.positions) for a in books) > 0
        for book in books:
            assert _same(book, mine[book.login]) == {}
        first = gateway.poll()
        assert {q.symbol for q in first.quotes} == {s.name for s in broker.symbols()}  # a full board


def _engine(snapshots: list[AccountSnapshot], symbols: dict, board: tuple) -> dict[int, AccountActor]:
    return {s.login: AccountActor(s, symbols, {q.symbol: q for q in board}) for s in snapshots}


def _feed(engine: dict[int, AccountActor], batch: Batch) -> None:
    for login, actor in engine.items():
        actor.apply(Step(batch.quotes, tuple(d for d in batch.deals if d.login == login),
                         swaps=tuple(s for s in batch.swaps if s.login == login)))


def _figures(engine: dict[int, AccountActor]) -> dict[int, dict[str, object]]:
    # peak equity and drawdown are maxima over the prices an engine saw: ticks lost while the
    # connection was down (dropped, expired session) cannot raise the gateway engine's peak, so
    # they are path figures, compared apart (within 1%); everything else is state and must agree
    skip = {"group", "book", "updated_msc", "peak_equity", "drawdown"}
    return {login: {k: v for k, v in dataclasses.asdict(a.figures()).items() if k not in skip}
            for login, a in engine.items()}


def test_the_engine_fed_through_the_gateway_equals_the_engine_fed_directly_through_faults(
        tmp_path: Path) -> None:
    """Acceptance: a recorded session of the simulator, played by the fake MT5 Web API one batch
    per step, read by the gateway (lock step: it polls after each), with faults injected along the
    way (deals late and twice, a malformed answer, a dropped connection, an expired session, a
    forbidden request, slow answers); beside it the same recording fed directly. Deals: each
    once, in order, field for field; engine figures: equal, account for account."""
    path = tmp_path / "session.jsonl"
    broker = SimulatedBroker(accounts=20, seed=5, start_msc=MIDNIGHT - 20_000, warmup=60.0)
    recorded = record(broker, path, STEPS + 1)
    assert sum(len(b.swaps) for b in recorded) > 0  # the session crosses a rollover
    fake, _, driver = make_replay_fake(path)
    direct_feed = ReplayGateway(path)
    board = direct_feed.poll()
    symbols = {s.name: s for s in direct_feed.symbols()}
    direct = _engine(list(direct_feed.accounts()), symbols, board.quotes)
    assert fake.feed is not None
    feed_faults, faults = fake.feed.faults, fake.faults
    inject = {
        10: lambda: setattr(feed_faults, "late_deals", 3),
        25: lambda: setattr(feed_faults, "twice_deals", 3),
        40: lambda: setattr(faults, "malformed", 1),
        55: lambda: setattr(faults, "drop", 1),
        70: fake.expire_sessions,
        85: lambda: setattr(faults, "forbid", 1),
        100: lambda: setattr(faults, "delay_s", 0.2),
        103: lambda: setattr(faults, "delay_s", 0.0),
    }
    with serving(fake) as url, _gateway(url) as gateway:
        first = gateway.poll()
        via = _engine(list(gateway.accounts()), {s.name: s for s in gateway.symbols()}, first.quotes)
        sent: list[Deal] = []
        got: list[Deal] = []
        for step in range(STEPS):
            if step in inject:
                inject[step]()
            driver.advance()
            batch = direct_feed.poll()
            _feed(direct, batch)
            sent.extend(batch.deals)
            _settle(gateway)
            mine = gateway.poll()
            _feed(via, mine)
            got.extend(mine.deals)
        _settle(gateway, 4)  # whatever was late has arrived
        last = gateway.poll()
        _feed(via, last)
        got.extend(last.deals)
        stats = gateway.stats
        assert len(sent) > 20
        assert [d.ticket for d in got] == [d.ticket for d in sent]  # nothing lost, doubled or reordered
        assert got == sent  # field for field
        assert stats.rollovers == 1
        assert stats.reconnects >= 1  # the faults did hit
        assert stats.requests_failed >= 1
        assert _figures(via) == _figures(direct)
        for login, account in via.items():
            seen, everything = account.figures(), direct[login].figures()
            assert seen.equity <= seen.peak_equity  # a peak, whichever ticks were seen
            # seeing a subset of the prices, the gateway's engine can miss a peak, never invent one
            assert seen.peak_equity <= everything.peak_equity
            assert everything.peak_equity - seen.peak_equity <= 0.01 * everything.peak_equity
        # The gateway's books (what a restarted actor resynchronises from) are the server's,
        # margin rates fixed at opening included (the deals carry MT5's RateMargin).
        for book in direct_feed.accounts():
            assert _same(book, gateway.account(book.login)) == {}


def test_a_slow_server_stalls_no_other_connection() -> None:
    """Two connections; one server answers only after 6 s. Polling the slow one returns at once
    (with nothing) while its own thread waits, and the fast one delivers every deal meanwhile."""
    slow_fake, _, slow_driver = make_feed_fake(accounts=4, seed=3)
    fast_fake, _, fast_driver = make_feed_fake(accounts=20, seed=5)
    with serving(slow_fake) as slow_url, serving(fast_fake) as fast_url, \
            _gateway(slow_url) as slow, _gateway(fast_url) as fast:
        slow.poll()
        fast.poll()
        slow_fake.faults.delay_s = 6.0
        _settle(slow, 1)  # from here on, the slow gateway's next request waits 6 s
        slow_driver.advance()
        stuck_at = slow.stats.polls
        sent, got = [], []
        for _ in range(15):
            assert slow.poll().deals == ()  # nothing arrived, and poll did not wait for the server
            (batch,) = fast_driver.advance()
            sent.extend(batch.deals)
            _settle(fast)
            got.extend(fast.poll().deals)
        assert slow.stats.polls == stuck_at, "the slow server answered: the test proved nothing"
        assert fast.stats.polls >= 30
        assert got == sent
        assert slow.state == "live"  # slow is not broken: its answers just take long
        slow_fake.faults.delay_s = 0.0


def test_a_server_that_stays_away_fails_visibly_after_the_stop() -> None:
    fake, _, _ = make_feed_fake(accounts=4)
    with serving(fake) as url, _gateway(url, reconnect_s=0.5) as gateway:
        gateway.poll()
        fake.faults.forbid = 10_000
        deadline = time.monotonic() + 30
        seen = set()
        while gateway.state != "failed":
            seen.add(gateway.state)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "reconnecting" in seen
        with pytest.raises(GatewayError, match=r"connection failed: .*HTTP 403"):
            gateway.poll()
        fake.faults.forbid = 0


def test_wrong_credentials_are_refused_at_opening() -> None:
    fake, _, _ = make_feed_fake(accounts=2)
    with serving(fake) as url, pytest.raises(AuthError, match="wrong manager password"):
        WebApiGateway(WebApiSettings(url, MANAGER_LOGIN, "wrong"), "web")


def test_keep_alive_pings_on_its_timer() -> None:
    fake, _, _ = make_feed_fake(accounts=2)
    with serving(fake) as url, _gateway(url, ping_s=0.0) as gateway:
        _settle(gateway, 3)
        assert fake.paths.get("/api/test/access", 0) >= 2


def test_open_gateway_builds_a_webapi_gateway_from_a_spec() -> None:
    fake, broker, _ = make_feed_fake(accounts=3)
    with serving(fake) as url:
        spec = GatewaySpec(kind="webapi", connection_id="c1", options={"url": url}, interval=0.05,
                           login=MANAGER_LOGIN, password=MANAGER_PASSWORD)
        gateway = open_gateway(spec)
        try:
            assert isinstance(gateway, WebApiGateway)
            assert len(gateway.accounts()) == len(broker.accounts())
        finally:
            gateway.close()
        with pytest.raises(GatewayError, match="needs a manager login and password"):
            open_gateway(dataclasses.replace(spec, password=None))



def test_a_simulated_server_trades_on_its_timer_and_the_view_counts_what_was_read() -> None:
    """What `veles demo --via-webapi` and the bench feed the engine through."""
    server = SimulatedWebApi(trading=False, accounts=5, seed=3, interval=0.05, start_msc=START, warmup=30.0)
    try:
        settings = WebApiSettings(server.url, server.login, server.password)
        gateway = WebApiGateway(settings, "sim", interval=0.02)
        try:
            assert len(gateway.accounts()) == 5
            gateway.poll()
            server.start_trading()
            _settle(gateway, 20)
            server.stop_trading()
            assert server.steps > 1
            view = gateway.view()
            assert view["state"] == "live"
            assert view["polls"] >= 20
            assert view["bytes_received"] > 0
            assert view["authentications"] == 1
        finally:
            gateway.close()
    finally:
        server.close()
