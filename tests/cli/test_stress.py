"""`veles stress` and `veles bench stress` on the simulated broker's book."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from veles.bench import stress as stress_bench
from veles.cli import app
from veles.risk.stress import parse_scenario, run_stress

SCENARIO = "all -6%, USD +3% against all"


def test_stress_prints_a_table_and_the_json_of_the_same_book() -> None:
    result = CliRunner().invoke(
        app,
        [
            "stress",
            "--scenario",
            "all -6%",
            "--scenario",
            "USD +3% against all",
            "--accounts",
            "150",
            "--seed",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    *table, last = result.stdout.strip().splitlines()
    printed = json.loads(last)
    snapshots, symbols, quotes = stress_bench.simulated_book(150, 5)
    expected = run_stress(snapshots, symbols, quotes, parse_scenario(SCENARIO, symbols)).to_json()
    assert printed == json.loads(json.dumps(expected))
    assert printed["stopped_out"], "the scenario should stop some accounts out"
    text = "\n".join(table)
    assert f"stopped out           {len(printed['stopped_out'])}" in text
    for login in printed["stopped_out"]:
        assert f"{login:>9} " in text


def test_stress_refuses_a_bad_scenario_naming_the_part() -> None:
    result = CliRunner().invoke(app, ["stress", "--scenario", "XAUUSD -3", "--accounts", "5"])
    assert result.exit_code == 2
    assert "the move must look like -3% or +2.5%, got '-3'" in result.output


def test_stress_refuses_zero_accounts() -> None:
    result = CliRunner().invoke(app, ["stress", "--scenario", "XAUUSD -3%", "--accounts", "0"])
    assert result.exit_code == 2
    assert "must be at least 1" in result.output


def test_bench_stress_reports_time_counts_and_ratio() -> None:
    result = CliRunner().invoke(
        app, ["bench", "stress", "--accounts", "150", "--seed", "5", "--scenario", SCENARIO]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    snapshots, _, _ = stress_bench.simulated_book(150, 5)
    assert figures["accounts"] == 150
    assert figures["positions"] == sum(len(s.positions) for s in snapshots)
    assert figures["stopped_out"] > 0
    assert figures["positions_closed"] >= figures["stopped_out"]
    assert figures["stress_s"] > 0
    assert figures["revaluation_s"] > 0
    assert figures["ratio"] > 0


def test_bench_stress_refuses_a_bad_scenario() -> None:
    result = CliRunner().invoke(
        app, ["bench", "stress", "--accounts", "5", "--scenario", "BTC +1% against all"]
    )
    assert result.exit_code == 2
    assert "'BTC' is not a currency of this book's symbols" in result.output
