"""`veles billing sync`: the three plans' products and monthly prices, made once, found again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from tests.stubs.stripe_fake import StripeFake
from veles.billing import cli as billing_cli
from veles.billing.catalog import lookup_key, sync
from veles.billing.client import BillingNotConfigured, stripe_client
from veles.cli import app
from veles.config import Settings


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    """A fresh (empty) Stripe for each test."""
    fake = StripeFake().start()
    yield fake
    fake.close()


def _settings(fake: StripeFake) -> Settings:
    return Settings(_env_file=None, stripe_secret_key=SecretStr("sk_test_sync"), stripe_api_base=fake.base)


def test_sync_makes_the_catalog_once_and_finds_it_again(fake: StripeFake) -> None:
    settings = _settings(fake)
    first = sync(settings)
    assert [(p.plan, p.unit_amount, p.made) for p in first] == [
        ("starter", 19_900, ("product", "price")), ("professional", 49_900, ("product", "price")),
        ("enterprise", 99_900, ("product", "price"))]
    second = sync(settings)
    assert [p.made for p in second] == [(), (), ()]
    assert [p.price for p in second] == [p.price for p in first]
    client = stripe_client(settings)
    for synced in second:
        price = client.v1.prices.retrieve(synced.price)
        assert (price.lookup_key, price.unit_amount, price.currency) == (lookup_key(synced.plan),
                                                                         synced.unit_amount, "usd")
        assert price.recurring is not None
        assert price.recurring.interval == "month"
        product = client.v1.products.retrieve(synced.product)  # in localstripe
        assert product.metadata["veles_plan"] == synced.plan
    assert fake.requests["POST /v1/prices"] == 3


def test_a_price_that_no_longer_matches_the_plan_is_replaced(fake: StripeFake) -> None:
    settings = _settings(fake)
    client = stripe_client(settings)
    product = client.v1.products.create(params={"id": "veles_starter", "name": "Veles Starter"})
    old = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 14_900,
                                          "recurring": {"interval": "month"},
                                          "lookup_key": lookup_key("starter")})
    starter = sync(settings)[0]
    assert starter.made == ("price",)
    assert starter.price != old.id
    assert client.v1.prices.retrieve(old.id).lookup_key is None  # the key moved to the new price


def test_without_a_key_sync_says_what_to_set() -> None:
    with pytest.raises(BillingNotConfigured, match="STRIPE_SECRET_KEY"):
        sync(Settings(_env_file=None))


def test_the_command_line_syncs_and_reports(fake: StripeFake, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(fake)
    monkeypatch.setattr(billing_cli, "get_settings", lambda: settings)
    first = CliRunner().invoke(app, ["billing", "sync"])
    assert first.exit_code == 0, first.output
    assert "starter: product veles_starter, price price_" in first.output
    assert "(199.00 USD a month): product, price created" in first.output
    again = CliRunner().invoke(app, ["billing", "sync"])
    assert again.output.count("already there") == 3
    monkeypatch.setattr(billing_cli, "get_settings", lambda: Settings(_env_file=None))
    unset = CliRunner().invoke(app, ["billing", "sync"])
    assert unset.exit_code == 2
    assert "set STRIPE_SECRET_KEY" in unset.output
