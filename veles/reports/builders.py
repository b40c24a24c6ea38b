"""The four reports, each a function from gathered `Inputs` to a `Document`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from models.alerts import Alert
from models.reports import ReportType
from veles.reports import desk
from veles.reports.document import Chart, Column, Document, Figure, Kind, Price, Table
from veles.reports.errors import ReportError
from veles.reports.gather import Inputs, Row

EXPOSURE_CHART_SYMBOLS = 15  # bars that stay legible on a landscape page
SUMMARY_PDF_ROWS = 50  # rows of a daily summary's lists the PDF lays out (the workbook has all)
LOG_PDF_ROWS = 400  # rows of the alerts log the PDF lays out (about 12 pages)

ACCOUNT_COLUMNS = (
    Column("Login", Kind.INT),
    Column("Group"),
    Column("Book"),
    Column("Ccy"),
    Column("Balance", Kind.MONEY),
    Column("Equity", Kind.MONEY),
    Column("Floating P/L", Kind.MONEY),
    Column("Margin", Kind.MONEY),
    Column("Margin level", Kind.PERCENT),
    Column("Drawdown", Kind.PERCENT),
    Column("Risk score", Kind.INT),
    Column("State"),
)
ALERT_COLUMNS = (
    Column("Time", Kind.TIME),
    Column("Severity"),
    Column("Subject"),
    Column("Value", Kind.MONEY),
    Column("State"),
    Column("Message"),
)
DEAL_COLUMNS = (
    Column("Time", Kind.TIME),
    Column("Ticket", Kind.INT),
    Column("Type"),
    Column("Entry"),
    Column("Symbol"),
    Column("Volume", Kind.LOTS),
    Column("Price", Kind.PRICE),
    Column("Commission", Kind.MONEY),
    Column("Swap", Kind.MONEY),
    Column("Profit", Kind.MONEY),
    Column("Comment"),
)
_MONEY_DEALS = ("balance", "credit")  # MT5 statements show their amount in the profit column
EXPOSURE_COLUMNS = (
    Column("Symbol"),
    Column("Net lots", Kind.LOTS),
    Column("Net USD", Kind.MONEY),
    Column("A-book lots", Kind.LOTS),
    Column("A-book USD", Kind.MONEY),
    Column("B-book lots", Kind.LOTS),
    Column("B-book USD", Kind.MONEY),
)


def _account_row(row: Row) -> tuple[Any, ...]:
    return (
        row["login"],
        row["group"],
        row["book"],
        row["currency"],
        row["balance"],
        row["equity"],
        row["profit"],
        row["margin"],
        row["margin_level"],
        row["drawdown"] * 100.0,  # the engine's drawdown is a fraction of peak equity; the column is percent
        row["risk_score"],
        row["state"].replace("_", " "),
    )


def _riskiness(row: Row) -> tuple[float, float]:
    """Riskiest first: lowest margin level (None = no margin used = safest), then highest score."""
    level = row["margin_level"]
    return (level if level is not None else float("inf"), -row["risk_score"])


def _alert_groups(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    """One line per rule, subject and severity: the first raise's time, then the latest value,
    state and message, which says how many raises the line stands for (repeats the engine folded
    included). A flapping account is one line with a count, not pages of the same alert."""
    groups: dict[tuple[str, str, str], list[Alert]] = {}
    for a in alerts:  # oldest first
        rule = a.engine_rule or (str(a.rule_id) if a.rule_id is not None else a.message)
        groups.setdefault((rule, a.subject, a.severity.value), []).append(a)
    lines = []
    for group in groups.values():
        first, last = group[0], group[-1]
        times = sum(a.repeats for a in group)
        message = last.message
        if times != last.repeats:
            message = f"{message} Seen {times} times in this period."
        lines.append((first.created_at, first.severity.value, first.subject, last.value, last.state.value,
                      message))
    return lines


def _alerts_table(inputs: Inputs, title: str = "Alerts", pdf_rows: int = SUMMARY_PDF_ROWS) -> Table:
    rows = _alert_groups(inputs.alerts)
    return Table(title, ALERT_COLUMNS, rows, empty="No alerts in this period.", pdf_rows=pdf_rows)


def _exposure(inputs: Inputs) -> tuple[Table, Chart]:
    assert inputs.book is not None
    exposure = inputs.book["totals"]["exposure"]
    table = Table(
        "Net exposure by symbol",
        EXPOSURE_COLUMNS,
        [
            (e["symbol"], e["lots"], e["usd"], e["a_lots"], e["a_usd"], e["b_lots"], e["b_usd"])
            for e in exposure
        ],
        empty="No open positions.",
    )
    top = sorted(exposure, key=lambda e: abs(e["usd"]), reverse=True)[:EXPOSURE_CHART_SYMBOLS]
    chart = Chart(
        "Net exposure by symbol (USD, largest first)",
        "bar",
        [e["symbol"] for e in top],
        {"A-book": [e["a_usd"] for e in top], "B-book": [e["b_usd"] for e in top]},
        "USD",
        table=table.title,
    )
    return table, chart


def _book_figures(totals: Row) -> list[Figure]:
    return [
        Figure("Accounts", totals["accounts"], Kind.INT),
        Figure("Balance", totals["balance"], Kind.MONEY),
        Figure("Equity", totals["equity"], Kind.MONEY),
        Figure("Floating P/L", totals["profit"], Kind.MONEY),
        Figure("Margin", totals["margin"], Kind.MONEY),
        Figure("Free margin", totals["free_margin"], Kind.MONEY),
        Figure("Margin level", totals["margin_level"], Kind.PERCENT),
        Figure("In margin call", totals["margin_call"], Kind.INT),
        Figure("In stop-out", totals["stop_out"], Kind.INT),
    ]


def _history_chart(inputs: Inputs, title: str, unit: str = "USD") -> Chart | None:
    if not inputs.history:
        return None
    return Chart(
        title,
        "line",
        [p.ts for p in inputs.history],
        {"Equity": [p.equity for p in inputs.history], "Balance": [p.balance for p in inputs.history]},
        unit,
    )


def _live_note(generated_at: datetime) -> str:
    return (
        f"Book totals, exposure and accounts are the live figures at {generated_at:%Y-%m-%d %H:%M} UTC; "
        "alerts and history cover the period above."
    )


def daily_risk(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """Book totals, exposure by symbol, the riskiest accounts, margin-call and stop-out accounts,
    alerts of the period, and the book's equity over the period when history was recorded."""
    assert inputs.book is not None
    accounts = inputs.book["accounts"]
    exposure_table, exposure_chart = _exposure(inputs)
    riskiest = sorted(accounts, key=_riskiness)[:top]
    troubled = [r for r in sorted(accounts, key=_riskiness) if r["state"] != "ok"]
    charts = [exposure_chart]
    equity = _history_chart(inputs, "Book equity and balance over the period (USD)")
    if equity is not None:
        charts.append(equity)
    return Document(
        "Daily risk summary",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=_book_figures(inputs.book["totals"]),
        charts=charts,
        tables=[
            Table(
                f"Top {top} risky accounts (lowest margin level first)",
                ACCOUNT_COLUMNS,
                [_account_row(r) for r in riskiest],
                empty="No accounts.",
            ),
            Table(
                "Accounts in margin call or stop-out",
                ACCOUNT_COLUMNS,
                [_account_row(r) for r in troubled],
                empty="No account is in margin call or stop-out.",
                pdf_rows=SUMMARY_PDF_ROWS,
            ),
            _alerts_table(inputs),
            exposure_table,
            Table(
                "All accounts",
                ACCOUNT_COLUMNS,
                [_account_row(r) for r in sorted(accounts, key=_riskiness)],
                empty="No accounts.",
                pdf_rows=0,
            ),
        ],
        notes=[_live_note(generated_at)],
    )


def exposure(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """Net exposure per symbol, split by A-book and B-book."""
    assert inputs.book is not None
    table, chart = _exposure(inputs)
    return Document(
        "Exposure report",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=_book_figures(inputs.book["totals"]),
        charts=[chart],
        tables=[table],
        notes=[_live_note(generated_at)],
    )


def _deals_table(inputs: Inputs) -> Table:
    digits = inputs.account["digits"] if inputs.account else {}
    rows = [
        (
            d.executed_at,
            d.ticket,
            d.kind,
            "" if d.kind in _MONEY_DEALS else d.entry,
            d.symbol,
            None if d.kind in _MONEY_DEALS else d.volume,
            None if d.kind in _MONEY_DEALS else Price(d.price, digits.get(d.symbol)),
            d.commission,
            d.swap,
            d.amount if d.kind in _MONEY_DEALS else d.profit,
            d.comment,
        )
        for d in inputs.deals
    ]
    return Table("Deals in the period", DEAL_COLUMNS, rows, empty="No deals in this period.",
                 pdf_rows=LOG_PDF_ROWS)


def _deal_figures(inputs: Inputs) -> list[Figure]:
    """Realised P/L (closing profit, commission and swap of trades) and money in or out."""
    trades = [d for d in inputs.deals if d.kind not in _MONEY_DEALS]
    realised = sum(d.profit + d.commission + d.swap for d in trades)
    moved = sum(d.amount for d in inputs.deals if d.kind == "balance")
    return [
        Figure("Deals in period", len(inputs.deals), Kind.INT),
        Figure("Realised P/L", round(realised, 2), Kind.MONEY),
        Figure("Deposits - withdrawals", round(moved, 2), Kind.MONEY),
    ]


def account_statement(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """One account: live figures and open positions, its deals and equity over the period, its
    alerts."""
    login = inputs.request.login
    if inputs.account is None:
        raise ReportError(f"login: the broker has no account {login}")
    figures = inputs.account["figures"]
    positions = Table(
        "Open positions",
        (
            Column("Ticket", Kind.INT),
            Column("Symbol"),
            Column("Side"),
            Column("Lots", Kind.LOTS),
            Column("Open price", Kind.PRICE),
            Column("Swap", Kind.MONEY),
            Column("Profit", Kind.MONEY),
        ),
        [
            (p["ticket"], p["symbol"], p["side"], p["volume"],
             Price(p["price_open"], inputs.account["digits"].get(p["symbol"])), p["swap"], p["profit"])
            for p in inputs.account["positions"]
        ],
        empty="No open positions.",
    )
    currency = figures["currency"]
    chart = _history_chart(inputs, f"Equity and balance of {login} ({currency})", currency)
    return Document(
        f"Account statement {login}",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=[
            Figure("Group", figures["group"], Kind.TEXT),
            Figure("Currency", figures["currency"], Kind.TEXT),
            Figure("Balance", figures["balance"], Kind.MONEY),
            Figure("Equity", figures["equity"], Kind.MONEY),
            Figure("Floating P/L", figures["profit"], Kind.MONEY),
            Figure("Margin", figures["margin"], Kind.MONEY),
            Figure("Margin level", figures["margin_level"], Kind.PERCENT),
            Figure("State", figures["state"].replace("_", " "), Kind.TEXT),
            *_deal_figures(inputs),
        ],
        charts=[chart] if chart is not None else [],
        tables=[positions, _deals_table(inputs), _alerts_table(inputs, "Alerts on this account")],
        notes=[
            f"Figures and positions are live at {generated_at:%Y-%m-%d %H:%M} UTC; "
            "the deals, the equity chart and alerts cover the period above (deals as the engine "
            "applied them; balance and credit operations show their amount as profit)."
        ],
    )


def alerts_log(inputs: Inputs, generated_at: datetime, top: int) -> Document:
    """Every alert raised in the period, oldest first, with counts by severity."""
    counts = {s: sum(a.severity.value == s for a in inputs.alerts) for s in ("critical", "warning", "info")}
    return Document(
        "Alerts log",
        inputs.tenant,
        inputs.request.period,
        generated_at,
        figures=[
            Figure("Alerts", len(inputs.alerts), Kind.INT),
            *(Figure(s.capitalize(), n, Kind.INT) for s, n in counts.items()),
        ],
        tables=[_alerts_table(inputs, pdf_rows=LOG_PDF_ROWS)],
    )


BUILDERS: dict[ReportType, Callable[[Inputs, datetime, int], Document]] = {
    ReportType.DAILY_RISK: daily_risk,
    ReportType.EXPOSURE: exposure,
    ReportType.ACCOUNT_STATEMENT: account_statement,
    ReportType.ALERTS_LOG: alerts_log,
    ReportType.MANAGEMENT: desk.management,
    ReportType.STRESS: desk.stress_report,
}


def build(inputs: Inputs, top: int, generated_at: datetime | None = None) -> Document:
    """The document of `inputs.request.type`."""
    return BUILDERS[inputs.request.type](inputs, generated_at or datetime.now(UTC), top)
