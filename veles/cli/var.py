"""`veles var`: 1-day VaR of a simulated broker's B-book, with its out-of-sample backtest.

The simulated server (seeded) trades for its warm-up, the book is summed from every account's
figures as the engine sums it, and the broker's own daily history (veles/mt5/history.py) gives the
return scenarios. Prints a table, or JSON with --json.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from veles.mt5.history import DEFAULT_DAYS
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountState
from veles.risk.book import book_from_accounts
from veles.risk.var import VarInputError, backtest, broker_exposure, value_at_risk

START_MSC = 1_764_939_600_000  # 2025-12-05 13:00 UTC: a fixed clock makes the run reproducible


def run_var(
    accounts: Annotated[int, typer.Option(help="Simulated trading accounts.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker (accounts, prices, history).")] = 7,
    history_days: Annotated[int, typer.Option(help="Daily closes per symbol.")] = DEFAULT_DAYS,
    backtest_days: Annotated[int, typer.Option(help="Out-of-sample days of the backtest.")] = 250,
    window: Annotated[
        int, typer.Option(help="Daily returns each backtest day's VaR is estimated from.")
    ] = 250,
    warmup: Annotated[
        float, typer.Option(help="Simulated seconds of trading before the book is taken.")
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """VaR 95/99 (historical and parametric) of the B-book net exposure, per-symbol contributions,
    and the Kupiec backtest. Bad input exits with code 2 and `error: <field>: <reason>`."""
    if accounts < 1:
        _fail("accounts: must be at least 1")
    if window < 2:
        _fail(f"window: must be at least 2 daily returns, got {window}")
    if backtest_days < 1:
        _fail(f"backtest_days: must be at least 1, got {backtest_days}")
    if history_days < 2:
        _fail(f"history_days: need at least 2 closes, got {history_days}")
    if backtest_days + window > history_days - 1:
        _fail(
            f"backtest_days: {backtest_days} days after a {window}-day window need {backtest_days + window} "
            f"daily returns, {history_days} closes give {history_days - 1}"
        )
    try:
        report = var_report(accounts, seed, history_days, backtest_days, window, warmup)
    except VarInputError as exc:  # a flat B-book: nothing to measure
        _fail(str(exc))
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def var_report(
    accounts: int, seed: int, history_days: int, backtest_days: int, window: int, warmup: float
) -> dict[str, Any]:
    """Everything `veles var` prints, as plain data."""
    broker = SimulatedBroker("var", accounts=accounts, seed=seed, start_msc=START_MSC, warmup=warmup)
    specs = {spec.name: spec for spec in broker.symbols()}
    quotes = dict(broker.market.quotes())
    book = book_from_accounts(
        AccountState(snapshot, specs, quotes).figures() for snapshot in broker.accounts()
    )
    exposure = broker_exposure(book)
    history = broker.daily_history(history_days)
    figures = value_at_risk(exposure, history.closes)
    tests = backtest(exposure, history.closes, backtest_days, window)
    return {
        "accounts": accounts,
        "seed": seed,
        "history": {"days": len(history.dates), "first": history.dates[0], "last": history.dates[-1]},
        "exposure_usd": {symbol: round(value, 2) for symbol, value in exposure.items()},
        "var": [
            {
                "method": f.method,
                "confidence": f.confidence,
                "var_usd": round(f.var, 2),
                "scenario_date": history.dates[f.scenario + 1] if f.scenario is not None else None,
                "contributions_usd": {
                    s: round(v, 2) for s, v in sorted(f.contributions.items(), key=lambda i: -i[1])
                },
            }
            for f in figures
        ],
        "backtest": [
            {
                "method": t.method,
                "confidence": t.confidence,
                "days": t.days,
                "window": window,
                "exceptions": t.exceptions,
                "expected": round(t.expected, 2),
                "lr": round(t.lr, 4),
                "p_value": round(t.p_value, 4),
            }
            for t in tests
        ],
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as text tables."""
    history = report["history"]
    lines = [
        f"B-book VaR, 1 day: {report['accounts']} accounts, seed {report['seed']}, "
        f"{history['days']} daily closes {history['first']}..{history['last']}",
        "",
        f"{'method':<11} {'conf':>5} {'VaR USD':>14}  scenario",
    ]
    for figure in report["var"]:
        lines.append(
            f"{figure['method']:<11} {figure['confidence']:>5.0%} {figure['var_usd']:>14,.2f}  "
            f"{figure['scenario_date'] or ''}"
        )
    symbols = sorted(report["exposure_usd"], key=lambda s: -abs(report["exposure_usd"][s]))
    heads = [f"{f['method'][:4]} {f['confidence']:.0%}" for f in report["var"]]
    lines += ["", "Contributions (USD; each column sums to its VaR)",
              f"{'symbol':<8} {'exposure':>14} " + " ".join(f"{h:>12}" for h in heads)]  # fmt: skip
    for symbol in symbols:
        cells = " ".join(f"{f['contributions_usd'][symbol]:>12,.0f}" for f in report["var"])
        lines.append(f"{symbol:<8} {report['exposure_usd'][symbol]:>14,.0f} {cells}")
    header = f"{'method':<11} {'conf':>5} {'days':>5} {'window':>6} {'exceptions':>10} {'expected':>8}"
    lines += [
        "",
        "Backtest (out of sample, Kupiec proportion of failures)",
        f"{header} {'LR':>8} {'p-value':>8}",
    ]
    for test in report["backtest"]:
        lines.append(
            f"{test['method']:<11} {test['confidence']:>5.0%} {test['days']:>5} {test['window']:>6} "
            f"{test['exceptions']:>10} {test['expected']:>8.2f} {test['lr']:>8.3f} {test['p_value']:>8.3f}"
        )
    return "\n".join(lines)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
