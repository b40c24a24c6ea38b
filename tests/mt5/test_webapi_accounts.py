"""`user/account/get_batch` on the fake server: the simulated broker's own figures, as strings
with the currency's digits, read back exactly by `accounts.account_figures`; refused without the
right, and a record that is not what MT5 sends is a ProtocolError naming the field."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_fake, serving
from veles.mt5.webapi.accounts import WebAccount, account_figures, parse_account
from veles.mt5.webapi.client import WebApiClient, WebApiSettings
from veles.mt5.webapi.errors import ProtocolError, RightsError
from veles.mt5.webapi.fake_server import ALL_RIGHTS, Manager
from veles.risk.money import to_minor


def settings(url: str, login: int = MANAGER_LOGIN, password: str = MANAGER_PASSWORD) -> WebApiSettings:
    return WebApiSettings(url, login, password, timeout_s=5.0, attempts=2, backoff_s=0.01)


async def read(url: str, logins: tuple[int, ...] = ()) -> dict[int, WebAccount]:
    async with WebApiClient(settings(url)) as client:
        return await account_figures(client, logins)


def test_the_server_figures_are_the_simulators_own_in_minor_units() -> None:
    fake, broker = make_fake(accounts=8)
    with serving(fake) as url:
        broker.poll()
        served = asyncio.run(read(url))
        own = {f.login: f for f in broker.figures()}
        assert sorted(served) == sorted(own)
        assert any(f.margin > 0 for f in own.values())
        for login, figures in own.items():
            account = served[login]
            assert account.balance == to_minor(figures.balance)
            assert account.credit == to_minor(figures.credit)
            assert account.equity == to_minor(figures.equity)
            assert account.margin == to_minor(figures.margin)
            assert account.free_margin == to_minor(figures.free_margin)
            level = figures.margin_level
            assert account.margin_level == (None if level is None else to_minor(level))
        one = next(iter(own))
        assert list(asyncio.run(read(url, (one,)))) == [one]
        with httpx.Client(base_url=url) as raw:
            assert raw.get("/api/user/account/get_batch", params={"group": "*"}).status_code == 403


def test_without_the_accounts_right_the_read_is_refused_by_name() -> None:
    no_accounts = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=ALL_RIGHTS - {"accounts"})
    fake, _ = make_fake(managers=(no_accounts,))
    with serving(fake) as url, pytest.raises(RightsError) as refused:
        asyncio.run(read(url))
    assert "8 Not enough permissions" in str(refused.value)
    assert refused.value.step == "user/account/get_batch"


@pytest.mark.parametrize(("change", "named"), [
    ({"Equity": 12.5}, "Equity"),  # a float, not a string
    ({"Margin": "10.001"}, "Margin"),  # more decimals than the currency has
    ({"MarginLevel": "abc"}, "MarginLevel"),
    ({"Login": None}, "Login"),
])
def test_a_bad_record_is_a_protocol_error_naming_the_field(change: dict[str, object], named: str) -> None:
    good = {"Login": "7", "CurrencyDigits": "2", "Balance": "100.00", "Credit": "0.00", "Equity": "90.00",
            "Margin": "10.00", "MarginFree": "80.00", "MarginLevel": "900.00"}
    assert parse_account(good).margin_level == 90000
    with pytest.raises(ProtocolError) as bad:
        parse_account({**good, **change})
    assert named in str(bad.value)
    del good["Equity"]
    with pytest.raises(ProtocolError, match="Equity"):
        parse_account(good)
