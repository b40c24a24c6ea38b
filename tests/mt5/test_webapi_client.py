"""The async Web API client against the fake server over real HTTP: mutual authentication, one
kept-alive session, re-authentication after a lost session, bounded retries, timeouts, retcodes
mapped to clear errors, and numbers read exactly (money in minor units)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_fake, self_signed_tls, serving
from veles.mt5.webapi import client as client_module
from veles.mt5.webapi.client import WebApiClient, WebApiSettings
from veles.mt5.webapi.errors import (
    AuthError,
    ProtocolError,
    RightsError,
    ServerNotTrusted,
    SessionLost,
    WebApiError,
)
from veles.mt5.webapi.fake_server import Manager
from veles.mt5.webapi.records import group_name


def settings(url: str, password: str = MANAGER_PASSWORD, **kw: object) -> WebApiSettings:
    return WebApiSettings(url=url, login=MANAGER_LOGIN, password=password, backoff_s=0.01, **kw)  # type: ignore[arg-type]


async def test_snapshot_equals_the_simulators_books_exactly() -> None:
    fake, broker = make_fake(accounts=10)
    with serving(fake) as url:
        async with WebApiClient(settings(url)) as client:
            assert client.version_access == "1290"
            symbols = await client.symbols()
            groups = await client.groups()
            users = await client.users(groups)
            positions = await client.positions()
    assert {s.name for s in symbols} == {s.name for s in broker.symbols()}
    eurusd = next(s for s in symbols if s.name == "EURUSD")
    assert eurusd.contract_size == Decimal(100000)
    assert eurusd.tick_size == Decimal("0.00001")
    books = {a.login: a for a in broker.accounts()}
    assert {u.login for u in users} == set(books)
    for user in users:
        book = books[user.login]
        assert user.group == group_name(book)
        assert user.balance == round(book.balance * 100)  # integer cents, no float left
        assert isinstance(user.balance, int)
    served = sorted(p.ticket for a in books.values() for p in a.positions)
    assert sorted(p.ticket for p in positions) == served
    one = next(p for a in books.values() for p in a.positions)
    mine = next(p for p in positions if p.ticket == one.ticket)
    assert mine.volume_ext == round(one.volume * 100_000_000)
    assert mine.buy == (one.side.value == "buy")
    assert fake.auth_starts == 1  # one session served every request


async def test_lost_sessions_are_authenticated_again_and_requests_repeated() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        async with WebApiClient(settings(url)) as client:
            fake.expire_sessions()
            await client.ping()
            fake.faults.forbid = 1
            await client.ping()
            fake.faults.drop = 1
            await client.ping()
            fake.faults.delay_s = 0.4
            fast = WebApiClient(settings(url, timeout_s=0.1, attempts=2))
            with pytest.raises(SessionLost, match=r"no answer within 0\.1 s"):
                await fast.connect()
            await fast.close()
            fake.faults.delay_s = 0.0
            assert client.authentications == 4  # first, after expiry, after 403, after the drop


async def test_retries_stop() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        async with WebApiClient(settings(url, attempts=3)) as client:
            fake.faults.forbid = 10
            with pytest.raises(SessionLost, match="HTTP 403"):
                await client.ping()
            assert fake.faults.forbid == 10 - 3  # three attempts, then the error


async def test_wrong_password_is_an_auth_error_naming_the_step_and_retcode() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        client = WebApiClient(settings(url, password="wrong"))
        with pytest.raises(AuthError) as caught:
            await client.connect()
        await client.close()
    assert caught.value.step == "auth/answer"
    assert caught.value.retcode is not None
    assert caught.value.retcode.code == 3006
    assert fake.auth_starts == 1  # a refusal is not retried


async def test_a_server_that_cannot_prove_the_password_is_refused() -> None:
    fake, _ = make_fake()
    fake.faults.impostor = True
    with serving(fake) as url:
        client = WebApiClient(settings(url))
        with pytest.raises(ServerNotTrusted, match="could not prove"):
            await client.connect()
        with pytest.raises(ServerNotTrusted):  # nothing is read from it either
            await client.ping()
        await client.close()


async def test_missing_rights_name_what_and_which_group() -> None:
    narrow = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=frozenset({"users", "groups", "symbols"}))
    fake, _ = make_fake(managers=(narrow,))
    with serving(fake) as url:
        async with WebApiClient(settings(url)) as client:
            lacks = r"lacks the right to read positions of group real\*"
            with pytest.raises(RightsError, match=lacks) as caught:
                await client.positions("real*")
    assert str(caught.value).endswith("(retcode 8 Not enough permissions)")


async def test_malformed_answer_is_a_protocol_error() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        async with WebApiClient(settings(url)) as client:
            fake.faults.malformed = 1
            with pytest.raises(ProtocolError, match="test/access: the answer is not JSON"):
                await client.ping()
            await client.ping()  # the session carries on


async def test_tls_is_verified_by_default_and_a_private_ca_can_be_trusted(tmp_path: Path) -> None:
    ca, cert, key = self_signed_tls(tmp_path)
    fake, _ = make_fake()
    with serving(fake, tls=(cert, key)) as url:
        assert url.startswith("https://")
        untrusting = WebApiClient(settings(url))
        with pytest.raises(WebApiError, match="auth/start: TLS certificate not trusted") as caught:
            await untrusting.connect()
        await untrusting.close()
        assert not isinstance(caught.value, SessionLost)  # not retried: it would not fix itself
        assert fake.requests == 0
        async with WebApiClient(settings(url, ca_bundle=str(ca))) as client:
            await client.ping()
        assert fake.auth_starts == 1


@pytest.mark.parametrize(("record", "problem"), [
    ({"Login": "1", "Group": "g", "Leverage": "100", "Balance": "12.345", "Credit": "0"}, "than 2 decimals"),
    ({"Login": "1", "Group": "g", "Leverage": "100", "Balance": 12.5, "Credit": "0"}, "as a string"),
    ({"Login": "1", "Group": "g", "Leverage": "100", "Credit": "0"}, "Balance"),
    ({"Login": "1", "Group": "other", "Leverage": "100", "Balance": "1", "Credit": "0"}, "cannot read"),
    ("not a record", "JSON object"),
])
def test_bad_user_records_are_protocol_errors_naming_the_field(record: object, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        client_module._parse("user/get_batch", lambda r: client_module._user(r, {"g": 2}), record)


@pytest.mark.parametrize("value", [[], {"total": "-1"}, {"total": "x"}, {}, None])
def test_bad_totals_are_protocol_errors(value: object) -> None:
    with pytest.raises(ProtocolError, match="symbol/total"):
        client_module._total("symbol/total", value)
