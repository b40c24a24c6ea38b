"""`veles bench reports`: how long a daily risk summary of a large book takes to render.

The book is real engine output computed in-process (no Ray): the seeded simulated broker, one
`AccountActor` per account, merged by the aggregator's own `BookPublisher`, so the report sees the
same snapshot shape the live aggregator serves. Alerts are synthesised over the period.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.mt5_account import AccountActor
from actors.risk_aggregator import BookPublisher
from models.alerts import Alert, AlertState, Severity
from models.history import HistoryPoint
from models.reports import ReportFormat, ReportType
from veles.mt5.simulator import SimulatedBroker
from veles.reports.builders import build
from veles.reports.document import Document
from veles.reports.gather import Inputs
from veles.reports.render import render
from veles.reports.request import Period, ReportRequest


def simulated_book(accounts: int, seed: int = 7, polls: int = 4) -> dict[str, Any]:
    """An aggregator snapshot (`totals`, `accounts`) of a simulated broker after a few batches."""
    broker = SimulatedBroker(accounts=accounts, seed=seed, warmup=60.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    first = broker.poll()
    board = {q.symbol: q for q in first.quotes}
    hosts = [AccountActor(snapshot, symbols, board) for snapshot in broker.accounts()]
    publisher = BookPublisher(tenant_id=0)
    publisher.apply([host.figures() for host in hosts], first.sent_at)
    by_login = {host.state.figures().login: host for host in hosts}
    for _ in range(polls):
        batch = broker.poll()
        if batch.quotes:
            for host in hosts:
                host.state.apply_quotes(batch.quotes)
        for swap in batch.swaps:
            if (holder := by_login.get(swap.login)) is not None:
                holder.state.apply_swap(swap)
        for deal in batch.deals:
            owner = by_login.get(deal.login)
            if owner is not None:
                owner.state.apply_deal(deal)
        publisher.apply([host.figures() for host in hosts], batch.sent_at)
    return publisher.snapshot()


def synthetic_inputs(
    book: dict[str, Any], report_type: ReportType, period: Period, alerts: int = 40, seed: int = 7
) -> Inputs:
    """Inputs for a report over `book`: alerts spread over the period and a minute-by-minute book
    equity series drifting around the book's equity."""
    rng = random.Random(seed)
    span = (period.end - period.start).total_seconds()
    logins = [row["login"] for row in book["accounts"]] or [0]
    raised = sorted(period.start + timedelta(seconds=rng.uniform(0, span)) for _ in range(alerts))
    alert_rows = [
        Alert(
            tenant_id=0,
            severity=rng.choice(list(Severity)),
            subject=str(rng.choice(logins)),
            value=round(rng.uniform(20, 150), 2),
            state=AlertState.RESOLVED,
            created_at=ts,
            message=f"Margin level fell to {rng.uniform(20, 150):.1f} % (limit 100 %) · Ünïcødé ✓ €",
        )
        for ts in raised
    ]
    equity = book["totals"]["equity"]
    minutes = int(span // 60)
    history, level = [], equity
    for m in range(minutes):
        level += rng.gauss(0, equity * 0.0005)
        history.append(
            HistoryPoint(
                period.start + timedelta(minutes=m),
                level,
                book["totals"]["balance"],
                book["totals"]["margin"],
                None,
                level - book["totals"]["balance"],
            )
        )
    request = ReportRequest(report_type, ReportFormat.PDF, period)
    return Inputs("Bench Broker Ltd", request, book, alert_rows, history, None)


def _full_listing(doc: Document) -> Document:
    """The naive layout: every table's every row in the PDF, as a report without limits would."""
    return replace(doc, tables=[replace(table, pdf_rows=None) for table in doc.tables])


def run(
    accounts: int, seed: int = 7, baseline: bool = False, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Render a daily summary of `accounts` accounts to PDF and Excel; seconds for each step.

    With `baseline`, also the naive PDF that lays out every account row (the full list the
    summary leaves to the workbook), and the ratio of the two PDF times."""
    start = time.perf_counter()
    book = simulated_book(accounts, seed)
    built = time.perf_counter()
    progress(f"book of {accounts} accounts computed in {built - start:.2f} s")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    period = Period(now - timedelta(days=1), now, "Europe/London")
    doc = build(synthetic_inputs(book, ReportType.DAILY_RISK, period), top=25, generated_at=now)
    t0 = time.perf_counter()
    pdf = render(doc, ReportFormat.PDF)
    t1 = time.perf_counter()
    xlsx = render(doc, ReportFormat.XLSX)
    t2 = time.perf_counter()
    result: dict[str, Any] = {
        "accounts": accounts,
        "book_s": round(built - start, 2),
        "pdf_s": round(t1 - t0, 2),
        "pdf_bytes": len(pdf.content),
        "xlsx_s": round(t2 - t1, 2),
        "xlsx_bytes": len(xlsx.content),
        "total_render_s": round(t2 - t0, 2),
    }
    if baseline:
        progress("rendering the naive full-listing PDF (slow)")
        t3 = time.perf_counter()
        render(_full_listing(doc), ReportFormat.PDF)
        naive = time.perf_counter() - t3
        result |= {"naive_pdf_s": round(naive, 2), "naive_over_summary": round(naive / (t1 - t0), 1)}
    return result
