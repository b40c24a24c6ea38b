"""The dealer's desk reports: the daily management report and the stress report.

Both are built from the live book as the engine holds it (per connection: symbols, latest quotes,
every account's snapshot) and the pure risk core: stress results are `veles.risk.stress`'s, VaR is
`veles.risk.var`'s over the daily closes the engine keeps, so the report says what the portal's
stress page and VaR panel say. Money is in each account's deposit currency, totals per currency
(never mixed); VaR is in USD like the exposure it measures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from veles.reports.document import Chart, Column, Document, Figure, Kind, Table
from veles.reports.errors import ReportError
from veles.reports.gather import Inputs
from veles.risk.account import AccountFigures, AccountState
from veles.risk.money import from_minor
from veles.risk.stress import ScenarioError, StressResult, book_symbols, parse_scenario, stress_book
from veles.services.var import VarUnavailable, book_exposure, var_view

# What runs when a broker saved no scenario: a broad fall, a broad rise and a dollar move.
DEFAULT_SCENARIOS = (("All -5%", "all -5%"), ("All +5%", "all +5%"), ("USD +2%", "USD +2% against all"))
TOP = 10

STRESS_COLUMNS = (
    Column("Scenario"),
    Column("Shocks"),
    Column("Stopped out", Kind.INT),
    Column("Positions closed", Kind.INT),
    Column("Ccy"),
    Column("Negative balances", Kind.MONEY),
    Column("B-book for broker", Kind.MONEY),
    Column("B-book against broker", Kind.MONEY),
)
STOPPED_COLUMNS = (
    Column("Scenario"),
    Column("Login", Kind.INT),
    Column("Group"),
    Column("Book"),
    Column("Ccy"),
    Column("Equity before", Kind.MONEY),
    Column("Equity after", Kind.MONEY),
    Column("Positions closed", Kind.INT),
    Column("Negative balance", Kind.MONEY),
)


def _figures(inputs: Inputs) -> list[AccountFigures]:
    if not inputs.parts:
        raise ReportError("the risk engine holds no account for this broker: nothing to report on")
    return [
        AccountState(s, part.symbols, part.quotes).figures() for part in inputs.parts for s in part.snapshots
    ]


def _scenarios(inputs: Inputs) -> list[tuple[str, str]]:
    return inputs.scenarios or list(DEFAULT_SCENARIOS)


def _stress_runs(inputs: Inputs) -> list[tuple[str, str, StressResult | str]]:
    """(name, text, result or why the scenario could not run) for each scenario."""
    symbols = book_symbols(inputs.parts)
    runs: list[tuple[str, str, StressResult | str]] = []
    for name, text in _scenarios(inputs):
        try:
            runs.append((name, text, stress_book(inputs.parts, parse_scenario(text, symbols))))
        except ScenarioError as exc:  # a symbol the servers no longer list
            runs.append((name, text, f"not run: {exc}"))
    return runs


def _currencies(*totals: dict[str, int]) -> list[str]:
    return sorted({c for t in totals for c in t}) or ["-"]


def _stress_rows(runs: Iterable[tuple[str, str, StressResult | str]]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for name, text, result in runs:
        if isinstance(result, str):
            rows.append((name, result, None, None, "", None, None, None))
            continue
        absorbed, won, lost = result.absorbed(), result.b_book_for_broker(), result.b_book_against_broker()
        for index, ccy in enumerate(_currencies(absorbed, won, lost)):
            rows.append(
                (
                    name if index == 0 else "",
                    text if index == 0 else "",
                    len(result.stopped_out) if index == 0 else None,
                    result.positions_closed if index == 0 else None,
                    ccy,
                    from_minor(absorbed.get(ccy, 0)),
                    from_minor(won.get(ccy, 0)),
                    from_minor(lost.get(ccy, 0)),
                )
            )
    return rows


def _stopped_rows(runs: Iterable[tuple[str, str, StressResult | str]]) -> list[tuple[Any, ...]]:
    return [
        (
            name,
            a.login,
            a.group,
            a.book,
            a.currency,
            from_minor(a.equity_before),
            from_minor(a.equity_after),
            len(a.closed),
            from_minor(a.absorbed),
        )
        for name, _text, result in runs
        if not isinstance(result, str)
        for a in sorted(result.stopped_out, key=lambda a: (-a.absorbed, a.login))
    ]


def _var_tables(inputs: Inputs) -> tuple[list[Figure], list[Table], list[str]]:
    exposure = book_exposure(inputs.parts)
    try:
        if inputs.closes is None:
            raise VarUnavailable(inputs.closes_problem or "no history")
        view = var_view(exposure, *inputs.closes)
    except VarUnavailable as exc:
        return [], [], [f"VaR not measured: {exc}."]
    figures = [
        Figure(
            f"VaR {f['confidence']:.0%} {'hist.' if f['method'] == 'historical' else 'VCV'} (USD)",
            f["var_usd"],
            Kind.MONEY,
        )
        for f in view["var"]
    ]
    methods = Table(
        "Value at Risk of the B-book, 1 day (USD)",
        (
            Column("Method"),
            Column("Confidence", Kind.PERCENT),
            Column("VaR", Kind.MONEY),
            Column("Day of history"),
        ),
        [
            (
                "historical" if f["method"] == "historical" else "variance-covariance",
                f["confidence"] * 100,
                f["var_usd"],
                f["scenario_date"] or "",
            )
            for f in view["var"]
        ],
    )
    heads = [f"{'Hist' if f['method'] == 'historical' else 'VCV'} {f['confidence']:.0%}" for f in view["var"]]
    order = sorted(view["exposure_usd"], key=lambda s: -abs(view["exposure_usd"][s]))
    contributions = Table(
        "VaR contribution per symbol (USD; each column sums to its VaR)",
        (Column("Symbol"), Column("Broker exposure", Kind.MONEY), *(Column(h, Kind.MONEY) for h in heads)),
        [(s, view["exposure_usd"][s], *(f["contributions_usd"][s] for f in view["var"])) for s in order],
    )
    history = view["history"]
    note = (
        f"VaR over {history['days']} daily closes, {history['first']} to {history['last']}, kept by the "
        "engine from the live feeds; historical VaR is a loss that happened on the day shown."
    )
    return figures, [methods, contributions], [note]


def _per_currency(values: Iterable[tuple[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for ccy, value in values:
        totals[ccy] += value
    return dict(sorted(totals.items()))


def management(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """B-book P/L, volumes, deposits and withdrawals, top winners and losers, stress and VaR."""
    figures = _figures(inputs)
    by_login = {f.login: f for f in figures}
    closed: dict[int, float] = defaultdict(float)
    volumes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    money: list[tuple[str, str, float]] = []
    for deal in inputs.deals:
        if deal.kind in ("buy", "sell"):
            volumes[deal.symbol][0] += deal.volume
            volumes[deal.symbol][1] += 1
            if deal.entry != "in":
                closed[deal.login] += deal.profit + deal.commission + deal.swap
        elif deal.kind == "balance" and deal.amount and deal.login in by_login:
            money.append(
                (by_login[deal.login].currency, "deposit" if deal.amount > 0 else "withdrawal", deal.amount)
            )
    pnl_rows = []
    for book in ("B", "A"):
        members = [f for f in figures if f.book == book]
        closed_by = _per_currency((f.currency, closed.get(f.login, 0.0)) for f in members)
        floating_by = _per_currency((f.currency, f.profit) for f in members)
        for ccy in sorted(set(closed_by) | set(floating_by)):
            client = closed_by.get(ccy, 0.0) + floating_by.get(ccy, 0.0)
            pnl_rows.append(
                (
                    f"{book}-book",
                    ccy,
                    closed_by.get(ccy, 0.0),
                    floating_by.get(ccy, 0.0),
                    client,
                    -client if book == "B" else None,
                )
            )
    deposits = _per_currency((c, a) for c, kind, a in money if kind == "deposit")
    withdrawals = _per_currency((c, -a) for c, kind, a in money if kind == "withdrawal")
    money_rows = [
        (
            ccy,
            deposits.get(ccy, 0.0),
            withdrawals.get(ccy, 0.0),
            deposits.get(ccy, 0.0) - withdrawals.get(ccy, 0.0),
        )
        for ccy in sorted(set(deposits) | set(withdrawals))
    ]
    results = sorted(
        ((closed.get(f.login, 0.0) + f.profit, f) for f in figures), key=lambda r: (r[0], r[1].login)
    )

    def account(row: tuple[float, AccountFigures]) -> tuple[Any, ...]:
        total, f = row
        return (f.login, f.group, f.book, f.currency, closed.get(f.login, 0.0), f.profit, total)

    winners = [account(r) for r in reversed(results) if r[0] > 0][:TOP]
    losers = [account(r) for r in results if r[0] < 0][:TOP]
    runs = _stress_runs(inputs)
    var_figures, var_tables, var_notes = _var_tables(inputs)
    traded = sorted(volumes.items(), key=lambda item: -item[1][0])
    account_columns = (
        Column("Login", Kind.INT),
        Column("Group"),
        Column("Book"),
        Column("Ccy"),
        Column("Closed P/L", Kind.MONEY),
        Column("Floating P/L", Kind.MONEY),
        Column("Result", Kind.MONEY),
    )
    charts = []
    if traded:
        charts.append(
            Chart(
                "Traded volume by symbol (lots)",
                "bar",
                [s for s, _ in traded[:15]],
                {"Lots": [v[0] for _, v in traded[:15]]},
                "lots",
                table="Traded volume by symbol",
            )
        )
    return Document(
        "Daily management report",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=[
            Figure("Accounts", len(figures), Kind.INT),
            Figure("Deals in the period", sum(int(v[1]) for v in volumes.values()), Kind.INT),
            Figure("Lots traded", sum(v[0] for v in volumes.values()), Kind.LOTS),
            *var_figures,
        ],
        charts=charts,
        tables=[
            Table(
                "P/L by book (clients' closed P/L in the period, floating P/L now; "
                "broker = minus B-book clients)",
                (
                    Column("Book"),
                    Column("Ccy"),
                    Column("Closed", Kind.MONEY),
                    Column("Floating", Kind.MONEY),
                    Column("Clients", Kind.MONEY),
                    Column("Broker", Kind.MONEY),
                ),
                pnl_rows,
                empty="No accounts.",
            ),
            Table(
                "Deposits and withdrawals",
                (
                    Column("Ccy"),
                    Column("Deposits", Kind.MONEY),
                    Column("Withdrawals", Kind.MONEY),
                    Column("Net", Kind.MONEY),
                ),
                money_rows,
            ),
            Table(
                "Traded volume by symbol",
                (Column("Symbol"), Column("Lots", Kind.LOTS), Column("Deals", Kind.INT)),
                [(s, v[0], int(v[1])) for s, v in traded],
            ),
            Table(
                f"Top {TOP} winners (closed in the period plus floating now)",
                account_columns,
                winners,
                empty="No account is ahead.",
            ),
            Table(f"Top {TOP} losers", account_columns, losers, empty="No account is behind."),
            Table(
                "Stress scenarios on the live book (MT5 stop-out cascade)", STRESS_COLUMNS, _stress_rows(runs)
            ),
            *var_tables,
        ],
        notes=[
            f"Live figures (floating P/L, stress, exposure) as at {generated_at:%Y-%m-%d %H:%M} UTC; deals, "
            "money in and out and closed P/L cover the period above. Money is in each account's deposit "
            "currency, totals per currency.",
            *var_notes,
        ],
    )


def stress_report(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """Every saved scenario (or the defaults) on the live book, and the accounts each stops out."""
    figures = _figures(inputs)
    runs = _stress_runs(inputs)
    done = [r for _, _, r in runs if not isinstance(r, str)]
    return Document(
        "Stress report",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=[
            Figure("Accounts", len(figures), Kind.INT),
            Figure("Scenarios", len(runs), Kind.INT),
            Figure("Most stopped out", max((len(r.stopped_out) for r in done), default=0), Kind.INT),
        ],
        tables=[
            Table(
                "Scenarios (MT5 stop-out cascade: largest loss closed first, level by level)",
                STRESS_COLUMNS,
                _stress_rows(runs),
            ),
            Table(
                "Accounts stopped out",
                STOPPED_COLUMNS,
                _stopped_rows(runs),
                empty="No scenario stops an account out.",
                pdf_rows=200,
            ),
        ],
        notes=[
            f"The live book as at {generated_at:%Y-%m-%d %H:%M} UTC; "
            + (
                "the broker's saved scenarios."
                if inputs.scenarios
                else "no scenario is saved, so the defaults ran (all -5%, all +5%, USD +2% against all)."
            )
        ],
    )
