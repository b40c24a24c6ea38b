"""Reconciliation against the fake MT5 Web API fed by the simulated broker: Veles' own account
actors (the engine's, fed the simulator's batches in-process) agree with the server's figures to
the cent; a wrong symbol setting on Veles' side shows up as drift, then as an alert once it has
persisted for two checks; bad answers from the server are reported, never raised."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

import pytest

from actors.mt5_account import AccountActor, Step
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_fake, serving
from veles.mt5.reconciliation import Reconciliation, compare
from veles.mt5.server_figures import SimulatorFigures, WebApiFigures
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.client import WebApiSettings
from veles.mt5.webapi.fake_server import ALL_RIGHTS, Manager
from veles.risk.account import AccountFigures
from veles.risk.alerts import AlertKind, AlertStatus
from veles.risk.instruments import SymbolSpec


class Engine:
    """Veles' side: one account actor per account, fed every batch as the hosts feed them."""

    def __init__(self, broker: SimulatedBroker, symbols: Mapping[str, SymbolSpec] | None = None) -> None:
        first = broker.poll()
        specs = dict(symbols or {s.name: s for s in broker.symbols()})
        board = {q.symbol: q for q in first.quotes}
        self.actors = {a.login: AccountActor(a, specs, board) for a in broker.accounts()}
        self.broker = broker

    def run(self, polls: int) -> None:
        for _ in range(polls):
            batch = self.broker.poll()
            for actor in self.actors.values():
                actor.apply(Step(batch.quotes, tuple(d for d in batch.deals if d.login == actor.login),
                                 batch.quotes, tuple(s for s in batch.swaps if s.login == actor.login)))

    def figures(self) -> dict[int, AccountFigures]:
        return {login: actor.figures() for login, actor in self.actors.items()}


def reader(url: str, login: int = MANAGER_LOGIN, password: str = MANAGER_PASSWORD) -> WebApiFigures:
    return WebApiFigures(WebApiSettings(url, login, password, timeout_s=5.0, attempts=2, backoff_s=0.01))


def test_drift_stays_zero_while_veles_follows_the_server() -> None:
    fake, broker = make_fake(accounts=24, seed=11)
    engine = Engine(broker)
    reconciliation = Reconciliation("sim", every_s=1.0)
    with serving(fake) as url:
        server = reader(url)
        for _ in range(6):
            engine.run(20)  # five simulated seconds of trading between checks
            assert reconciliation.check(server.read, engine.figures()) == []
    view = reconciliation.view()
    assert view["checks"] == 6
    assert view["failures"] == 0
    assert view["last_error"] is None
    assert view["compared"] == 24
    assert view["unmatched"] == 0
    assert view["drifting"] == 0
    assert view["drifting_once"] == 0
    assert view["accounts"] == []
    assert any(f.margin > 0 for f in engine.figures().values())  # positions were open: not trivially 0


def test_a_wrong_contract_size_shows_as_drift_then_an_alert() -> None:
    fake, broker = make_fake(accounts=24, seed=11)
    held = Counter(p.symbol for a in broker.accounts() for p in a.positions)
    symbol, _ = held.most_common(1)[0]
    right = {s.name: s for s in broker.symbols()}
    tenfold = right[symbol].contract_size * 10
    wrong = {**right, symbol: dataclasses.replace(right[symbol], contract_size=tenfold)}
    engine = Engine(broker, wrong)
    reconciliation = Reconciliation("conn-7", every_s=1.0)
    with serving(fake) as url:
        server = reader(url)
        engine.run(4)
        assert reconciliation.check(server.read, engine.figures()) == []  # once may be lag: no alert yet
        first = reconciliation.view()
        assert first["drifting"] == 0
        assert first["drifting_once"] > 0
        engine.run(4)
        raised = reconciliation.check(server.read, engine.figures())
    holders = {login for login, actor in engine.actors.items()
               if any(p.symbol == symbol for p in actor.state.positions())}
    assert raised
    assert {int(a.subject) for a in raised} <= holders
    alert = raised[0]
    assert alert.kind is AlertKind.RECONCILIATION_DRIFT
    assert alert.status is AlertStatus.RAISED
    assert alert.value is not None
    assert alert.value > 0.01
    assert alert.message.startswith(f"Account {alert.subject} on connection conn-7 differs from the MT5 "
                                    "server's own figures at two checks in a row: ")
    assert " in Veles, " in alert.message
    assert alert.message.endswith(".")
    view = reconciliation.view()
    assert view["drifting"] == len(raised)
    assert view["max_drift_minor"] > 1
    shown = view["accounts"][0]
    assert shown["confirmed"]
    assert shown["max_drift_minor"] == view["max_drift_minor"]
    assert set(shown["fields"]) & {"margin", "equity", "free_margin"}
    # the same accounts with the right settings agree again: the alerts clear
    board = dict(broker.market.quotes())
    fixed = {a.login: AccountActor(a, right, board).figures() for a in broker.accounts()}
    with serving(fake) as url:
        cleared = reconciliation.check(reader(url).read, fixed)
    assert {a.subject for a in cleared} == {a.subject for a in raised}
    assert all(a.status is AlertStatus.CLEARED and "agrees with the MT5 server" in a.message for a in cleared)
    assert reconciliation.view()["drifting"] == 0


@pytest.mark.parametrize(("fault", "said"), [
    ("malformed", "the answer is not JSON"),
    ("forbid", "HTTP 403"),
])
def test_bad_answers_are_reported_not_raised(fault: str, said: str) -> None:
    fake, broker = make_fake(accounts=4)
    engine = Engine(broker)
    reconciliation = Reconciliation("conn-3", every_s=1.0)
    with serving(fake) as url:
        setattr(fake.faults, fault, 50)
        assert reconciliation.check(reader(url).read, engine.figures()) == []
        setattr(fake.faults, fault, 0)
        view = reconciliation.view()
        assert view["failures"] == 1
        assert view["checks"] == 1
        assert said in view["last_error"]
        assert view["drifting"] == 0
        assert reconciliation.check(reader(url).read, engine.figures()) == []  # the server is back
    view = reconciliation.view()
    assert view["failures"] == 1
    assert view["last_error"] is None
    assert view["compared"] == 4


def test_missing_right_and_wrong_password_are_reported_by_name() -> None:
    fake, broker = make_fake(accounts=4, managers=(
        Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=ALL_RIGHTS - {"accounts"}),))
    engine = Engine(broker)
    reconciliation = Reconciliation("conn-3", every_s=1.0)
    with serving(fake) as url:
        reconciliation.check(reader(url).read, engine.figures())
        assert "user/account/get_batch" in reconciliation.view()["last_error"]
        assert "8 Not enough permissions" in reconciliation.view()["last_error"]
        reconciliation.check(reader(url, password="wrong").read, engine.figures())
        assert "auth/answer" in reconciliation.view()["last_error"]
        assert "3006" in reconciliation.view()["last_error"]
    assert reconciliation.view()["failures"] == 2


def test_the_simulators_own_fake_server_serves_reconciliation() -> None:
    broker = SimulatedBroker(accounts=5, seed=4, warmup=30.0, start_msc=1_700_000_000_000)
    engine = Engine(broker)
    engine.run(8)
    reads = SimulatorFigures(broker)
    try:
        server = reads.read()
        assert sorted(server) == sorted(engine.actors)
        assert compare(engine.figures(), server) == {}
    finally:
        reads.close()


def test_a_margin_level_on_one_side_only_is_drift() -> None:
    fake, broker = make_fake(accounts=8, seed=11)
    engine = Engine(broker)
    with serving(fake) as url:
        server = reader(url).read()
    login = next(lg for lg, f in engine.figures().items() if f.margin_level is not None)
    figures = {login: dataclasses.replace(engine.figures()[login], margin_level=None)}
    drift = compare(figures, server)[login]
    assert set(drift.fields) == {"margin_level"}
    assert drift.money == 0
    assert "margin level none% in Veles" in drift.sentence()
