"""The simulated server's symbol catalog looks like a real retail MT5 server's."""

from __future__ import annotations

import math

from veles.mt5.catalog import LISTINGS, SYMBOL_SPECS, USD_VALUES
from veles.risk.instruments import CalcMode

NAMES = {spec.name for spec in SYMBOL_SPECS}


def test_at_least_25_symbols_across_every_asset_class() -> None:
    assert len(SYMBOL_SPECS) >= 25
    assert len(NAMES) == len(SYMBOL_SPECS)
    assert {s.asset_class for s in SYMBOL_SPECS} == {"fx", "metal", "index", "energy", "stock", "future"}


def test_every_currency_converts_to_usd_and_eur() -> None:
    currencies = {s.profit_currency for s in SYMBOL_SPECS} | {
        s.effective_margin_currency for s in SYMBOL_SPECS
    }
    for deposit in ("USD", "EUR"):
        for ccy in currencies - {deposit}:
            assert f"{ccy}{deposit}" in NAMES or f"{deposit}{ccy}" in NAMES, (ccy, deposit)


def test_prices_respect_digits_and_tick_size() -> None:
    for listing in LISTINGS:
        spec = listing.spec
        ticks = listing.price / spec.tick_size
        assert math.isclose(ticks, round(ticks), abs_tol=1e-6), spec.name
        assert spec.tick_size >= spec.point - 1e-12, spec.name
        assert listing.price > 0
        assert listing.spread >= 1
        assert listing.tick_rate > 0


def test_tick_value_matches_contract_except_futures() -> None:
    for spec in SYMBOL_SPECS:
        if spec.calc_mode is CalcMode.FUTURES:
            assert spec.margin_initial > 0
            assert spec.tick_value > 0
        else:
            assert math.isclose(spec.tick_value, spec.contract_size * spec.tick_size), spec.name


def test_fx_crosses_start_consistent_with_majors() -> None:
    prices = {listing.spec.name: listing.price for listing in LISTINGS}
    assert math.isclose(prices["EURJPY"], prices["EURUSD"] * prices["USDJPY"], rel_tol=1e-4)
    assert math.isclose(prices["EURGBP"], USD_VALUES["EUR"] / USD_VALUES["GBP"], rel_tol=1e-4)


def test_specs_named_in_the_brief_are_there() -> None:
    for name in ("EURUSD", "USDJPY", "GBPJPY", "XAUUSD", "XAGUSD", "US500", "GER40", "UK100", "JP225",
                 "XTIUSD", "XBRUSD", "XNGUSD", "AAPL", "ES"):  # fmt: skip
        assert name in NAMES
    by_name = {s.name: s for s in SYMBOL_SPECS}
    assert by_name["XAUUSD"].contract_size == 100
    assert by_name["XAGUSD"].contract_size == 5000
    assert by_name["GER40"].profit_currency == "EUR"
    assert by_name["JP225"].profit_currency == "JPY"
    assert by_name["UK100"].profit_currency == "GBP"
