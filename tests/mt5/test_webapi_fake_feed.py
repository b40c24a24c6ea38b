"""The fake MT5 Web API's incremental commands over real HTTP: `tick/last` by transaction id,
`deal/get_batch` by time range with balance operations as deals, `trade/balance` booking them on a
simulated server, rights and bad parameters answered with MT5 retcodes; and the connector's
reading of records it cannot trust."""

from __future__ import annotations

import httpx
import pytest

from tests.mt5.test_webapi_fake_server import login
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_feed_fake, serving
from veles.mt5.webapi import convert
from veles.mt5.webapi.fake_server import ALL_RIGHTS, Manager
from veles.mt5.webapi.records import deal_record
from veles.mt5.webapi.simulated import SimulatedWebApi
from veles.risk.events import Deal, DealKind


def test_tick_last_answers_what_changed_since_a_transaction() -> None:
    fake, broker, driver = make_feed_fake(accounts=4)
    names = ",".join(s.name for s in broker.symbols())
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        assert login(client)["retcode"] == "0 Done"
        first = client.get("/api/tick/last", params={"symbol": names, "trans_id": 0}).json()
        assert len(first["answer"]) == len(broker.symbols())
        assert all(isinstance(v, str) for tick in first["answer"] for v in tick.values())
        again = client.get("/api/tick/last", params={"symbol": names, "trans_id": first["trans_id"]}).json()
        assert again["answer"] == []
        assert again["trans_id"] == first["trans_id"]
        (batch,) = driver.advance()
        later = client.get("/api/tick/last", params={"symbol": names, "trans_id": first["trans_id"]}).json()
        assert {t["Symbol"] for t in later["answer"]} == {q.symbol for q in batch.quotes}
        assert int(later["trans_id"]) > int(first["trans_id"])
        for bad in ({}, {"symbol": names, "trans_id": "x"}, {"symbol": names, "trans_id": -1}):
            assert client.get("/api/tick/last", params=bad).json() == {"retcode": "3 Invalid parameters"}


def test_deals_by_time_range_are_the_simulators() -> None:
    fake, _, driver = make_feed_fake(accounts=20, seed=5)
    sent = [d for batch in driver.advance(200) for d in batch.deals]
    assert len(sent) > 10
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        body = client.get("/api/deal/get_batch", params={"group": "*", "from": 0, "to": 2**31}).json()
        deals = [convert.deal(r) for r in body["answer"]]
        assert deals == sent
        one = sent[0]
        mine = client.get("/api/deal/get_batch", params={"login": one.login, "from": 0, "to": 2**31}).json()
        assert {r["Login"] for r in mine["answer"]} == {str(one.login)}
        for bad in ({"group": "*"}, {"group": "*", "from": 5, "to": 1}, {"from": 0, "to": 1},
                    {"login": "a,b", "from": 0, "to": 1}):
            assert client.get("/api/deal/get_batch", params=bad).json() == {"retcode": "3 Invalid parameters"}


def test_deals_and_ticks_need_their_rights_and_groups() -> None:
    no_deals = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=frozenset({"symbols", "ticks"}))
    fake, _, _ = make_feed_fake(accounts=4, managers=(no_deals,))
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        refused = client.get("/api/deal/get_batch", params={"group": "*", "from": 0, "to": 1}).json()
        assert refused == {"retcode": "8 Not enough permissions"}
    narrow = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, groups=("demo*",))
    fake, _, _ = make_feed_fake(accounts=4, managers=(narrow,))
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        refused = client.get("/api/deal/get_batch", params={"group": "real*", "from": 0, "to": 1}).json()
        assert refused == {"retcode": "8 Not enough permissions"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"Entry": "7"}, "Entry 7"),
        ({"Profit": "1.005"}, "Profit"),
        ({"Profit": 1.5}, "Profit"),
        ({"VolumeExt": "1.5"}, "VolumeExt"),
    ],
)
def test_deal_records_the_connector_cannot_trust_are_refused_naming_the_field(
        change: dict[str, object], says: str) -> None:
    record = {"Deal": "7", "Login": "100", "Action": "0", "Entry": "0", "Time": "1", "TimeMsc": "1000",
              "Symbol": "EURUSD", "DigitsCurrency": "2", "Price": "1.1", "VolumeExt": "1000000",
              "PositionID": "7", "Profit": "0", "Commission": "0", "Storage": "0", **change}
    with pytest.raises(ValueError, match=says):
        convert.deal(record)


def test_a_canceled_deal_moves_nothing() -> None:
    record = {"Deal": "8", "Login": "100", "Action": "13", "TimeMsc": "1000", "DigitsCurrency": "2",
              "Profit": "0"}
    assert convert.deal(record) is None


@pytest.mark.parametrize(("kind", "action"), [(DealKind.BALANCE, "2"), (DealKind.CREDIT, "3")])
def test_balance_and_credit_operations_travel_as_deals(kind: DealKind, action: str) -> None:
    """MT5 books a deposit, withdrawal or credit as a deal whose Action says so and whose Profit
    carries the amount; read back, it is the same operation."""
    operation = Deal(ticket=9, login=100, kind=kind, time_msc=1_700_000_000_123, amount=-250.5,
                     comment="withdrawal")
    record = deal_record(operation, "USD", None)
    assert (record["Action"], record["Profit"], record["Symbol"]) == (action, "-250.50", "")
    assert convert.deal(record) == operation


def test_a_simulated_servers_trade_balance_books_deals_the_feed_then_serves() -> None:
    """trade/balance (what the load test's feed storm sends to `veles demo --via-webapi`): each call
    books a deposit or credit on the simulator, served with its next step's deals and moving the
    account's balance; bad parameters, an unknown login and a manager without the trade right are
    refused with MT5 retcodes and book nothing."""
    server = SimulatedWebApi(trading=False, password=MANAGER_PASSWORD, accounts=4, seed=3, warmup=30.0)
    try:
        logins = [a.login for a in server.broker.accounts()]
        before = {a.login: a.balance for a in server.broker.accounts()}
        with httpx.Client(base_url=server.url) as client:
            assert login(client, login=server.login)["retcode"] == "0 Done"
            tickets = []
            for n, account in enumerate(logins):
                body = client.get("/api/trade/balance", params={
                    "login": account, "type": 2 if n % 2 == 0 else 3, "balance": "125.50",
                    "comment": "storm"}).json()
                assert body["retcode"] == "0 Done", body
                tickets.append(int(body["answer"]["ticket"]))
            refusals = [({"login": logins[0], "type": 2, "balance": "x"}, "3 Invalid parameters"),
                        ({"login": logins[0], "type": 2, "balance": "0.001"}, "3 Invalid parameters"),
                        ({"login": logins[0], "type": 2, "balance": "nan"}, "3 Invalid parameters"),
                        ({"login": logins[0], "type": 6, "balance": "10"}, "3 Invalid parameters"),
                        ({"type": 2, "balance": "10"}, "3 Invalid parameters"),
                        ({"login": 1, "type": 2, "balance": "10"}, "13 Not found")]
            for params, retcode in refusals:
                assert client.get("/api/trade/balance", params=params).json() == {"retcode": retcode}
            (batch,) = server.driver.advance()
            booked = [d for d in batch.deals if d.comment == "storm"]
            assert [d.ticket for d in booked] == tickets
            assert [(d.login, d.kind, d.amount) for d in booked] == [
                (account, DealKind.BALANCE if n % 2 == 0 else DealKind.CREDIT, 125.5)
                for n, account in enumerate(logins)]
            served = client.get("/api/deal/get_batch", params={"group": "*", "from": 0, "to": 2**31}).json()
            assert {int(r["Deal"]) for r in served["answer"]} >= set(tickets)
        assert server.broker.account(logins[0]).balance == before[logins[0]] + 125.5
    finally:
        server.close()


def test_trade_balance_needs_the_trade_right() -> None:
    readonly = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=ALL_RIGHTS - {"trade"})
    booked: list[int] = []

    def money(account: int, kind: DealKind, amount: float, comment: str) -> Deal:
        booked.append(account)
        raise AssertionError("a manager without the trade right moved money")

    fake, broker, _ = make_feed_fake(accounts=2, managers=(readonly,), money=money)
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        refused = client.get("/api/trade/balance", params={
            "login": broker.accounts()[0].login, "type": 2, "balance": "10"}).json()
        assert refused == {"retcode": "8 Not enough permissions"}
    assert booked == []
