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
        "margin": 1085.1,  # 1 lot * 100000 / 100 = 1000 EUR at the Ask 1.0851
        "free_margin": 3914.9,
        "margin_level": 460.79,
        "state": "ok",
    }
    (position,) = result["positions"]
    assert (position["ticket"], position["margin"], position["profit"], position["price_current"]) == (
        1,
        1085.1,
        0.0,
        1.085,
    )


@pytest.mark.parametrize(
    ("mode", "symbol", "expected"),
    [
        ("forex", {}, 1085.1),
        ("forex_no_leverage", {}, 108_510.0),
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
    # uncovered 1 lot sell at the Bid 1.085 -> 1085.00; covered 1 lot, hedged 100000, weighted rate
    # (1 * 1.0851 + 2 * 1.085) / 3 -> 1085.03
    assert _calc(tmp_path, document)["account"]["margin"] == 2170.03  # 1085.00 + 1085.03
    document["account"]["hedged_margin_larger_leg"] = True
    assert _calc(tmp_path, document)["account"]["margin"] == 2170.0  # sell leg: 2000 EUR * 1.085
    document["account"]["margin_mode"] = "netting"
    code, output = _run(tmp_path, document)
    assert (code, output.strip()) == (
        2,
        "error: positions[1].symbol: a netting account holds one position per symbol: EURUSD",
    )


def test_states_in_percent_and_money(tmp_path: Path) -> None:
    document = copy.deepcopy(EXAMPLE)
    document["account"]["balance"] = 1000
    document["quotes"]["EURUSD"] = {"bid": 1.0845, "ask": 1.0846}  # profit -50 -> equity 950, margin 1084.60
    result = _calc(tmp_path, document)["account"]
    assert (result["equity"], result["margin"], result["state"]) == (950.0, 1084.6, "margin_call")
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
