"""`veles var`: the simulated B-book's VaR, contributions and Kupiec backtest, JSON and table."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from veles.cli import app
from veles.risk.var import kupiec

SMALL = ["--accounts", "40", "--seed", "3", "--warmup", "120", "--history-days", "300",
         "--backtest-days", "120", "--window", "150"]  # fmt: skip


@pytest.fixture(scope="module")
def report() -> dict:
    result = CliRunner().invoke(app, ["var", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_report_holds_together(report: dict) -> None:
    assert report["history"]["days"] == 300
    exposure = report["exposure_usd"]
    assert exposure
    assert all(value != 0 for value in exposure.values())
    methods = {(f["method"], f["confidence"]): f for f in report["var"]}
    assert set(methods) == {(m, c) for m in ("historical", "parametric") for c in (0.95, 0.99)}
    for figure in report["var"]:
        assert figure["var_usd"] > 0
        assert set(figure["contributions_usd"]) == set(exposure)
        # contributions are rounded to the cent one by one: within a cent per symbol of the total
        assert math.isclose(
            sum(figure["contributions_usd"].values()), figure["var_usd"], abs_tol=0.01 * len(exposure)
        )
    for method in ("historical", "parametric"):
        assert methods[(method, 0.99)]["var_usd"] >= methods[(method, 0.95)]["var_usd"]
    assert methods[("historical", 0.95)]["scenario_date"] is not None
    for test in report["backtest"]:
        assert test["days"] == 120
        assert test["window"] == 150
        assert test["expected"] == pytest.approx(120 * (1 - test["confidence"]))
        lr, p_value = kupiec(test["exceptions"], 120, test["confidence"])
        assert test["lr"] == pytest.approx(lr, abs=1e-4)
        assert test["p_value"] == pytest.approx(
            p_value, abs=1e-4
        )


def test_same_seed_same_report(report: dict) -> None:
    again = CliRunner().invoke(app, ["var", *SMALL, "--json"])
    assert json.loads(again.output) == report


def test_table_shows_var_contributions_and_backtest(report: dict) -> None:
    result = CliRunner().invoke(app, ["var", *SMALL])
    assert result.exit_code == 0, result.output
    text = result.output
    hist95 = next(f for f in report["var"] if f["method"] == "historical" and f["confidence"] == 0.95)
    assert f"{hist95['var_usd']:,.2f}" in text
    assert "Kupiec" in text
    assert "exceptions" in text
    assert "p-value" in text
    for symbol in report["exposure_usd"]:
        assert f"\n{symbol} " in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accounts", "0"], "error: accounts: must be at least 1"),
        (["--history-days", "100", "--backtest-days", "60", "--window", "50"],
         "error: backtest_days: 60 days after a 50-day window need 110 daily returns, 100 closes give 99"),
        (["--history-days", "1"], "error: history_days: need at least 2 closes, got 1"),
        (["--window", "1"], "error: window: must be at least 2 daily returns, got 1"),
        (["--backtest-days", "0"], "error: backtest_days: must be at least 1, got 0"),
        # no trading before the book is taken: a flat B-book has nothing to measure
        (["--accounts", "3", "--warmup", "0"], "error: exposure: empty: no position to measure"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_with_the_field(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["var", *args])
    assert result.exit_code == 2
    assert message in result.output
