"""`veles risk calc FILE.json`: the JSON contract and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from veles.cli.risk import app

EXAMPLE: dict[str, Any] = {
    "account": {
        "currency": "USD",
        "leverage": 100,
        "balance": 5000,
        "credit": 0,
        "margin_mode": "hedging",
        "hedged_margin_larger_leg": False,
        "margin_call": 100,
        "stop_out": 50,
        "stopout_mode": "percent",
    },
    "symbols": {
        "EURUSD": {
            "calc_mode": "forex",
            "contract_size": 100000,
            "margin_currency": "EUR",
            "profit_currency": "USD",
            "digits": 5,
            "tick_size": 0.00001,
            "tick_value": 1.0,
            "margin_rate": 1.0,
            "initial_margin": 0,
            "hedged_margin": 100000,
        }
    },
    "quotes": {"EURUSD": {"bid": 1.085, "ask": 1.0851}},
    "positions": [{"ticket": 1, "symbol": "EURUSD", "type": "buy", "volume": 1.0, "price_open": 1.085}],
}


def _run(tmp_path: Path, document: Any, raw: str | None = None) -> tuple[int, str]:
    path = tmp_path / "account.json"
    path.write_text(raw if raw is not None else json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(app, ["calc", str(path)])
    return result.exit_code, result.output


def _calc(tmp_path: Path, document: Any) -> dict[str, Any]:
    code, output = _run(tmp_path, document)
    assert code == 0, output
    result: dict[str, Any] = json.loads(output)
    return result


def test_example_document(tmp_path: Path) -> None:
    result = _calc(tmp_path, EXAMPLE)
    assert result["account"] == {
        "currency": "USD",
        "leverage": 100,
        "balance": 5000.0,
        "credit": 0.0,
        "profit": 0.0,
        "equity": 5000.0,
        # 1 lot * 100000 / 100 = 1000 EUR at the rate fixed at opening, the open price 1.085 (the
        # position gives no margin_rate and EURUSD's own price converts EUR to USD), not the Ask
        "margin": 1085.0,
        "free_margin": 3915.0,
        "margin_level": 460.83,
        "state": "ok",
    }
    (position,) = result["positions"]
    assert (position["ticket"], position["margin"], position["profit"], position["price_current"]) == (
        1,
        1085.0,
        0.0,
        1.085,
    )


@pytest.mark.parametrize(
    ("mode", "symbol", "expected"),
    [
        ("forex", {}, 1085.0),
        ("forex_no_leverage", {}, 108_500.0),
        ("cfd", {"contract_size": 100, "margin_currency": "USD"}, 108.5),  # 1 * 100 * 1.085
        ("cfd_leverage", {"contract_size": 100, "margin_currency": "USD"}, 1.09),  # 108.5 / 100
        (
            "cfd_index",
            {"contract_size": 100, "margin_currency": "USD", "tick_value": 2.0, "tick_size": 10.0},
            21.7,
        ),
        ("futures", {"initial_margin": 2500, "margin_currency": "USD", "hedged_margin": 1250}, 2500.0),
        ("exchange_stocks", {"contract_size": 100, "margin_currency": "USD"}, 108.5),
    ],
)
def test_every_calc_mode(tmp_path: Path, mode: str, symbol: dict[str, Any], expected: float) -> None:
    """Margin of 1 lot bought at 1.085 per mode, by the MT5 formulas (veles/risk/margin.py);
    CFD Index: 1 * 100 * 1.085 * 2.0 / 10.0 = 21.70."""
    document = copy.deepcopy(EXAMPLE)
    document["symbols"]["EURUSD"].update(calc_mode=mode, **symbol)
    assert _calc(tmp_path, document)["account"]["margin"] == expected


def test_hedged_larger_leg_and_netting(tmp_path: Path) -> None:
    document = copy.deepcopy(EXAMPLE)
    document["positions"].append(
        {"ticket": 2, "symbol": "EURUSD", "type": "sell", "volume": 2.0, "price_open": 1.09}
    )
    # rates fixed at opening (MetaQuotes' hedged rule): uncovered 1 lot sell at the sell leg's open
    # price 1.09 -> 1090.00; covered 1 lot, hedged 100000, at the weighted average open price of all
    # positions (1 * 1.085 + 2 * 1.09) / 3 -> 1088.33
    assert _calc(tmp_path, document)["account"]["margin"] == 2178.33  # 1090.00 + 1088.33
    document["account"]["hedged_margin_larger_leg"] = True
    assert _calc(tmp_path, document)["account"]["margin"] == 2180.0  # sell leg: 2000 EUR * 1.09
    document["account"]["margin_mode"] = "netting"
    code, output = _run(tmp_path, document)
    assert (code, output.strip()) == (
        2,
        "error: positions[1].symbol: a netting account holds one position per symbol: EURUSD",
    )


def test_states_in_percent_and_money(tmp_path: Path) -> None:
    document = copy.deepcopy(EXAMPLE)
    document["account"]["balance"] = 1000
    document["quotes"]["EURUSD"] = {"bid": 1.0845, "ask": 1.0846}  # profit -50 -> equity 950, margin 1085.00
    result = _calc(tmp_path, document)["account"]
    assert (result["equity"], result["margin"], result["state"]) == (950.0, 1085.0, "margin_call")
    document["account"]["balance"] = 550
    assert _calc(tmp_path, document)["account"]["state"] == "stop_out"
    document["account"].update(stopout_mode="money", margin_call=600, stop_out=400)
    assert _calc(tmp_path, document)["account"]["state"] == "margin_call"  # equity 500


def test_cross_currency_account(tmp_path: Path) -> None:
    document = copy.deepcopy(EXAMPLE)
    document["account"]["currency"] = "GBP"
    document["quotes"]["GBPUSD"] = {"bid": 1.25, "ask": 1.2502}
    result = _calc(tmp_path, document)["account"]
    # 1000 EUR -> USD at the Ask 1.0851 -> GBP at 1/Ask 1.2502: 867.94
    assert result["margin"] == round(1000 * 1.0851 / 1.2502, 2)


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLE)
    change(document)
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_broken(lambda d: d.update(extra=1)), "extra: unknown field"),
        (_broken(lambda d: d["account"].update(colour="red")), "account.colour: unknown field"),
        (_broken(lambda d: d["positions"][0].update(bogus=1)), "positions[0].bogus: unknown field"),
        (_broken(lambda d: d["positions"][0].update(volume=0)), "positions[0].volume: must be > 0"),
        (_broken(lambda d: d["positions"][0].update(volume=-1)), "positions[0].volume: must be > 0"),
        (
            _broken(lambda d: d["positions"][0].update(price_open=-1.2)),
            "positions[0].price_open: must be > 0",
        ),
        (_broken(lambda d: d["quotes"]["EURUSD"].update(bid=-1)), "quotes.EURUSD.bid: must be > 0"),
        (_broken(lambda d: d["quotes"].clear()), "quotes.EURUSD: missing quote for held symbol EURUSD"),
        (
            _broken(lambda d: d["account"].update(currency="GBP")),
            "quotes.GBPUSD: missing quote, needed to convert EUR to GBP",
        ),
        (
            _broken(lambda d: d["positions"][0].update(symbol="GBPJPY")),
            "positions[0].symbol: unknown symbol 'GBPJPY'",
        ),
        (
            _broken(lambda d: d["positions"][0].update(type="long")),
            "positions[0].type: must be one of 'buy' or 'sell'",
        ),
        (_broken(lambda d: d["account"].update(leverage=0)), "account.leverage: must be > 0"),
        (
            _broken(lambda d: d["account"].update(currency="usd")),
            "account.currency: must be a three-letter currency code",
        ),
        (
            _broken(
                lambda d: (
                    d["symbols"]["EURUSD"].pop("calc_mode") and d["symbols"]["EURUSD"].update(calc_mode="x")
                )
            ),
            "symbols.EURUSD.calc_mode: must be one of",
        ),
        (_broken(lambda d: d.pop("symbols")), "symbols: required field is missing"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, document: Any, message: str
) -> None:
    code, output = _run(tmp_path, document)
    lines = output.strip().splitlines()
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {message}")


def test_nan_price_is_refused(tmp_path: Path) -> None:
    raw = json.dumps(EXAMPLE).replace('"bid": 1.085', '"bid": NaN')
    code, output = _run(tmp_path, None, raw)
    assert (code, output.strip()) == (2, "error: quotes.EURUSD.bid: must be a finite number")


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    code, output = _run(tmp_path, None, "{not json")
    assert code == 2
    assert output.startswith("error: ")
    assert "invalid JSON" in output
    assert len(output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["calc", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert result.output.strip().endswith("absent.json: No such file or directory")


HEDGE_SOURCE = (
    "https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/"
    "symbol_settings_trade/margin_calculation/margin_forex_hedge"
)


def _eurusd_positions(opens: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    return [
        {"ticket": ticket, "symbol": "EURUSD", "type": side, "volume": volume, "price_open": price}
        for ticket, (side, volume, price) in enumerate(opens, start=1)
    ]


def test_metaquotes_hedged_example_takes_the_rates_fixed_at_opening(tmp_path: Path) -> None:
    """MetaQuotes' hedged example (HEDGE_SOURCE, "Opposite Positions/Orders"): sells 3 x 1 lot at
    1.11943, buys 2 x 1 lot at 1.11953, hedged margin 100000, buy rate 2, sell rate 4, 1:500, USD.
    Covered 2 lots at the weighted average open price of all positions, 1.11947: 2 * 100000 *
    1.11947 * 3 / 500 = 1343.36; uncovered 1 lot at the sells' open price 1.11943: 1 * 100000 *
    1.11943 * 4 / 500 = 895.54; margin 2238.90, as printed. Today's quote (1.2500/1.2502) must not
    enter it: no position gives its margin rate, so each takes its open price (issue 15)."""
    document = copy.deepcopy(EXAMPLE)
    document["account"]["leverage"] = 500
    document["symbols"]["EURUSD"].update(buy_margin_rate=2.0, sell_margin_rate=4.0)
    document["quotes"]["EURUSD"] = {"bid": 1.25, "ask": 1.2502}
    document["positions"] = _eurusd_positions(
        [("sell", 1.0, 1.11943), ("buy", 1.0, 1.11953), ("sell", 1.0, 1.11943), ("buy", 1.0, 1.11953),
         ("sell", 1.0, 1.11943)]
    )
    result = _calc(tmp_path, document)
    assert result["account"]["margin"] == 2238.90
    assert [p["margin_rate"] for p in result["positions"]] == [1.11943, 1.11953, 1.11943, 1.11953, 1.11943]


def test_metaquotes_larger_leg_example_takes_the_rates_fixed_at_opening(tmp_path: Path) -> None:
    """MetaQuotes' "larger leg" example (HEDGE_SOURCE): buys 1 lot at 1.16214 and 2 lots at
    1.16207, sells 1 lot at 1.16184 and 1 lot at 1.16189, 1:100, USD. Long leg: 3 * 100000 / 100 =
    3000 EUR at its weighted open price 1.16209333 = 3486.28, the larger leg; short leg 2000 EUR *
    1.161865 = 2323.73. The quote 1.1700/1.1701 must not enter it."""
    document = copy.deepcopy(EXAMPLE)
    document["account"]["hedged_margin_larger_leg"] = True
    document["quotes"]["EURUSD"] = {"bid": 1.17, "ask": 1.1701}
    document["positions"] = _eurusd_positions(
        [("buy", 1.0, 1.16214), ("buy", 2.0, 1.16207), ("sell", 1.0, 1.16184), ("sell", 1.0, 1.16189)]
    )
    assert _calc(tmp_path, document)["account"]["margin"] == 3486.28


def test_a_given_margin_rate_wins_and_other_conversions_use_the_current_quote(tmp_path: Path) -> None:
    document = copy.deepcopy(EXAMPLE)
    document["positions"][0]["margin_rate"] = 1.05
    (position,) = _calc(tmp_path, document)["positions"]
    assert (position["margin"], position["margin_rate"]) == (1050.0, 1.05)
    # Margined in USD on a EUR account: EURUSD's own price converts it the other way round, so the
    # rate fixed at opening is 1 / 1.085: 1000 USD -> 921.66 EUR.
    document = copy.deepcopy(EXAMPLE)
    document["account"]["currency"] = "EUR"
    document["symbols"]["EURUSD"]["margin_currency"] = "USD"
    document["quotes"]["EURUSD"] = {"bid": 1.1, "ask": 1.1002}
    (position,) = _calc(tmp_path, document)["positions"]
    assert position["margin"] == round(1000 / 1.085, 2)


def test_the_help_states_the_margin_rate_rule() -> None:
    result = CliRunner().invoke(app, ["calc", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "open price" in text
    assert "weighted average open price" in text
