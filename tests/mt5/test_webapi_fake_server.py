"""The fake MT5 Web API, spoken to over real HTTP with a plain httpx client: it enforces the
documented authentication (hash, 10 s window, mutual proof, session per connection), rights,
group masks and the IP allow-list, answers with string numbers equal to the simulator's books,
and injects the faults tests need."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import httpx
import pytest

from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_fake, serving
from veles.mt5.webapi.auth import answer, new_cli_rand, password_hash, srv_rand_answer
from veles.mt5.webapi.fake_server import Manager, matches
from veles.mt5.webapi.records import group_name


def start(client: httpx.Client, login: int = MANAGER_LOGIN, **params: object) -> dict[str, str]:
    query = {"version": 484, "agent": "veles-test", "login": login, "type": "manager", **params}
    return client.get("/api/auth/start", params=query).json()


def login(
    client: httpx.Client, password: str = MANAGER_PASSWORD, login: int = MANAGER_LOGIN
) -> dict[str, str]:
    started = start(client, login)
    assert started["retcode"] == "0 Done"
    cli = new_cli_rand()
    body = client.get("/api/auth/answer", params={
        "srv_rand_answer": srv_rand_answer(password, started["srv_rand"]), "cli_rand": cli.hex()}).json()
    if body["retcode"] == "0 Done":
        assert body["cli_rand_answer"] == answer(password_hash(password), cli)
    return body


def test_authenticated_session_reads_the_simulator_with_string_numbers() -> None:
    fake, broker = make_fake()
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        started = start(client)
        assert started["version_access"] == "1290"
        assert len(bytes.fromhex(started["srv_rand"])) == 16
        client.get("/api/auth/start", params={})  # a bad start drops nothing but its own challenge
        assert login(client)["retcode"] == "0 Done"
        assert client.get("/api/test/access").json() == {"retcode": "0 Done"}
        assert client.get("/api/symbol/total").json()["answer"] == {"total": str(len(broker.symbols()))}
        eurusd = client.get("/api/symbol/get", params={"symbol": "EURUSD"}).json()["answer"]
        assert eurusd["ContractSize"] == "100000.00000000"
        assert all(isinstance(v, str) for v in eurusd.values())
        users = client.get("/api/user/get_batch", params={"group": "real*"}).json()["answer"]
        books = {a.login: a for a in broker.accounts()}
        assert sorted(int(u["Login"]) for u in users) == sorted(books)
        for user in users:
            book = books[int(user["Login"])]
            assert user["Group"] == group_name(book)
            assert abs(Decimal(user["Balance"]) - Decimal(repr(book.balance))) <= Decimal("0.005")
        positions = client.get("/api/position/get_batch", params={"group": "*"}).json()["answer"]
        assert len(positions) == sum(len(a.positions) for a in books.values()) > 0
        assert {p["Action"] for p in positions} <= {"0", "1"}
        groups = client.get("/api/group/total").json()["answer"]["total"]
        assert int(groups) == len({group_name(a) for a in books.values()})
        first = client.get("/api/group/next", params={"index": 0}).json()["answer"]
        assert first["MarginSOMode"] in {"0", "1"}
        assert client.get("/api/group/next", params={"index": 999}).json() == {"retcode": "13 Not found"}


def test_no_session_is_403_and_a_session_belongs_to_its_connection() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        with httpx.Client(base_url=url) as client:
            assert client.get("/api/test/access").status_code == 403
            login(client)
            assert client.get("/api/test/access").status_code == 200
        with httpx.Client(base_url=url) as other:  # a new TCP connection
            assert other.get("/api/test/access").status_code == 403
            assert other.get("/api/user/get_batch", params={"group": "*"}).status_code == 403


def test_wrong_password_and_unknown_login_fail_alike_at_the_answer() -> None:
    fake, _ = make_fake()
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        assert login(client, password="wrong")["retcode"] == "3006 Invalid account password"
        assert client.get("/api/test/access").status_code == 403
        assert start(client, login=4242)["retcode"] == "0 Done"  # no probing of logins
        assert login(client, login=4242)["retcode"] == "3006 Invalid account password"
        # the password hash as hex text instead of raw bytes: refused
        started = start(client)
        hex_text = password_hash(MANAGER_PASSWORD).hex() + started["srv_rand"]
        hexed = hashlib.md5(hex_text.encode()).hexdigest()  # noqa: S324
        body = client.get("/api/auth/answer", params={"srv_rand_answer": hexed, "cli_rand": "00" * 16}).json()
        assert body["retcode"] == "3006 Invalid account password"
        orphan = client.get("/api/auth/answer", params={"srv_rand_answer": "x", "cli_rand": "00" * 16})
        assert orphan.json() == {"retcode": "3 Invalid parameters"}  # no auth/start on this connection


def test_answer_after_the_ten_second_window_is_refused() -> None:
    now = [1000.0]
    fake, _ = make_fake(clock=lambda: now[0])
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        started = start(client)
        now[0] += 10.5
        body = client.get("/api/auth/answer", params={
            "srv_rand_answer": srv_rand_answer(MANAGER_PASSWORD, started["srv_rand"]),
            "cli_rand": new_cli_rand().hex()}).json()
        assert body == {"retcode": "9 Operation timeout"}
        assert client.get("/api/test/access").status_code == 403
        assert login(client)["retcode"] == "0 Done"


@pytest.mark.parametrize(("params", "retcode"), [
    ({"version": 483}, "1010 Client has old version"),
    ({"type": "client"}, "1000 Invalid terminal type"),
    ({"agent": "has space"}, "3 Invalid parameters"),
    ({"agent": ""}, "3 Invalid parameters"),
    ({"login": "abc"}, "3 Invalid parameters"),
])
def test_auth_start_checks_its_parameters(params: dict[str, object], retcode: str) -> None:
    fake, _ = make_fake()
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        assert start(client, **params)["retcode"] == retcode


def test_ip_allow_list() -> None:
    fake, _ = make_fake(managers=(Manager(MANAGER_LOGIN, MANAGER_PASSWORD, ip_allow=("10.0.0.0/8",)),))
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        assert start(client)["retcode"] == "1012 IP address is not allowed for the manager"


def test_rights_and_group_masks_per_manager() -> None:
    narrow = Manager(7, "Narrow-Pass1", rights=frozenset({"users", "groups"}), groups=("real\\standard*",))
    fake, broker = make_fake(accounts=20, managers=(Manager(MANAGER_LOGIN, MANAGER_PASSWORD), narrow))
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client, password="Narrow-Pass1", login=7)
        refused = client.get("/api/position/get_batch", params={"group": "real\\standard*"}).json()
        assert refused == {"retcode": "8 Not enough permissions"}
        assert client.get("/api/symbol/total").json() == {"retcode": "8 Not enough permissions"}
        assert client.get("/api/user/get_batch", params={"group": "real*"}).json() == {
            "retcode": "8 Not enough permissions"}
        mine = client.get("/api/user/get_batch", params={"group": "real\\standard*"}).json()["answer"]
        assert len(mine) == sum(a.group == "real\\standard" for a in broker.accounts()) > 0
        visible = int(client.get("/api/group/total").json()["answer"]["total"])
        assert visible == len({group_name(a) for a in broker.accounts() if a.group == "real\\standard"})


def test_group_masks() -> None:
    assert matches("real\\standard\\USD\\hedging", ["real*"])
    assert not matches("real\\test", ["real*", "!real\\test"])
    assert not matches("demo\\x", ["real*"])
    assert matches("REAL\\vip", ["real\\*"])


def test_faults_on_demand() -> None:
    fake, _ = make_fake()
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        fake.faults.forbid = 1
        assert client.get("/api/test/access").status_code == 403
        assert client.get("/api/test/access").status_code == 200
        fake.faults.malformed = 1
        with pytest.raises(json.JSONDecodeError):
            client.get("/api/test/access").json()
        fake.faults.drop = 1
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/test/access")
        fake.faults.delay_s = 0.5
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api/test/access", timeout=0.1)
        fake.faults.delay_s = 0.0
    with serving(fake) as url, httpx.Client(base_url=url) as client:
        login(client)
        fake.expire_sessions()
        assert client.get("/api/test/access").status_code == 403
        fake.faults.impostor = True
        started = start(client)
        cli = new_cli_rand()
        proof = srv_rand_answer(MANAGER_PASSWORD, started["srv_rand"])
        body = client.get("/api/auth/answer", params={"srv_rand_answer": proof, "cli_rand": cli.hex()}).json()
        assert body["retcode"] == "0 Done"
        assert body["cli_rand_answer"] != answer(password_hash(MANAGER_PASSWORD), cli)
