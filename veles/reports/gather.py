"""What a report is made from: the engine's live book (through a `LiveSource`), and the alerts and
risk history stored in the database for the report's period."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, col, select

from models.alerts import Alert
from models.deals import DealRecord
from models.history import HistoryPoint, RiskHistory
from models.market import DailyClose
from models.reports import ReportType
from models.stress import StressScenario
from models.tenancy import Tenant
from veles.mt5.history import DEFAULT_DAYS
from veles.reports.request import ReportRequest
from veles.risk.stress import BookPart
from veles.services.var import book_exposure

Row = dict[str, Any]
T = TypeVar("T")
DESK_TYPES = (ReportType.MANAGEMENT, ReportType.STRESS)


class LiveSource(Protocol):
    """The engine as reports see it; raises `SourceError` when it cannot answer in time."""

    def book(self, tenant_id: int) -> Row:
        """The tenant's book as its aggregator publishes a snapshot: `totals` and `accounts`."""
        ...

    def account(self, tenant_id: int, login: int) -> Row | None:
        """One account: `figures` (an account row) and `positions`; None if the tenant has no such login."""
        ...

    def book_parts(self, tenant_id: int) -> list[BookPart]:
        """The live book per connection (symbols, latest quotes, each account's snapshot): what the
        stress and VaR sections compute from."""
        ...


@dataclass(frozen=True)
class Inputs:
    """Everything one report needs, gathered before any rendering starts."""

    tenant: str
    request: ReportRequest
    book: Row | None
    alerts: list[Alert]
    history: list[HistoryPoint]
    account: Row | None
    deals: list[DealRecord] = field(default_factory=list)
    parts: list[BookPart] = field(default_factory=list)  # management and stress reports
    scenarios: list[tuple[str, str]] = field(default_factory=list)  # saved (name, scenario)
    closes: tuple[list[date], dict[str, list[float]]] | None = None  # VaR's history, or None
    closes_problem: str = ""  # why there is no VaR history (no exposure, nothing stored yet)


def _detached(session: Session, rows: list[T]) -> list[T]:
    """`rows` taken out of the session, so the builders can read them after it commits (a commit
    expires every attribute of the rows it still holds)."""
    for row in rows:
        session.expunge(row)
    return rows


def _alerts(session: Session, tenant_id: int, request: ReportRequest) -> list[Alert]:
    query = (
        select(Alert)
        .where(
            col(Alert.tenant_id) == tenant_id,
            col(Alert.created_at) >= request.period.start,
            col(Alert.created_at) < request.period.end,
        )
        .order_by(col(Alert.created_at))
    )
    if request.login is not None:
        query = query.where(col(Alert.subject) == str(request.login))
    return _detached(session, list(session.exec(query)))


def _history(session: Session, tenant_id: int, request: ReportRequest) -> list[HistoryPoint]:
    """The statement's account series, or the tenant's whole-book series (book None) otherwise."""
    query = select(RiskHistory).where(
        col(RiskHistory.tenant_id) == tenant_id,
        col(RiskHistory.ts) >= request.period.start,
        col(RiskHistory.ts) < request.period.end,
        col(RiskHistory.account_login) == request.login
        if request.login is not None
        else col(RiskHistory.account_login).is_(None),
    )
    if request.login is None:
        query = query.where(col(RiskHistory.book).is_(None))
    return [
        HistoryPoint.of(p)
        for p in session.exec(query.order_by(col(RiskHistory.ts)))
    ]


def _deals(session: Session, tenant_id: int, request: ReportRequest) -> list[DealRecord]:
    """The statement account's deals executed in the period, oldest first (the engine's deal log)."""
    return _detached(session, list(
        session.exec(
            select(DealRecord)
            .where(
                col(DealRecord.tenant_id) == tenant_id,
                col(DealRecord.login) == request.login,
                col(DealRecord.executed_at) >= request.period.start,
                col(DealRecord.executed_at) < request.period.end,
            )
            .order_by(col(DealRecord.executed_at), col(DealRecord.ticket))
        )
    ))


def _period_deals(session: Session, tenant_id: int, request: ReportRequest) -> list[DealRecord]:
    """Every deal of the tenant executed in the period (volumes, money in and out, closed P/L)."""
    return _detached(session, list(session.exec(
        select(DealRecord).where(
            col(DealRecord.tenant_id) == tenant_id,
            col(DealRecord.executed_at) >= request.period.start,
            col(DealRecord.executed_at) < request.period.end,
        ).order_by(col(DealRecord.executed_at), col(DealRecord.ticket))
    )))


def _scenarios(session: Session, tenant_id: int) -> list[tuple[str, str]]:
    rows = session.exec(select(StressScenario).where(col(StressScenario.tenant_id) == tenant_id)
                        .order_by(col(StressScenario.name)))
    return [(row.name, row.scenario) for row in rows]


def _closes(
    session: Session, tenant_id: int, symbols: list[str]
) -> tuple[list[date], dict[str, list[float]]]:
    """The days on which every symbol has a stored close, oldest first (`veles.services.var`)."""
    by_day: dict[date, dict[str, float]] = defaultdict(dict)
    for row in session.exec(select(DailyClose).where(col(DailyClose.tenant_id) == tenant_id,
                                                     col(DailyClose.symbol).in_(symbols))):
        by_day[row.day][row.symbol] = row.close
    days = sorted(day for day, closes in by_day.items() if len(closes) == len(symbols))[-DEFAULT_DAYS:]
    return days, {symbol: [by_day[day][symbol] for day in days] for symbol in symbols}


def _desk(session: Session, tenant_id: int, request: ReportRequest, live: LiveSource) -> dict[str, Any]:
    """What the management and stress reports add: the live book per connection, the saved
    scenarios, and (management) the period's deals and VaR's history of the exposed symbols."""
    parts = live.book_parts(tenant_id)
    extra: dict[str, Any] = {"parts": parts, "scenarios": _scenarios(session, tenant_id)}
    if request.type is ReportType.MANAGEMENT:
        extra["deals"] = _period_deals(session, tenant_id, request)
        exposure = book_exposure(parts)
        if exposure:
            extra["closes"] = _closes(session, tenant_id, list(exposure))
        else:
            extra["closes_problem"] = "the B-book is flat: the broker holds no exposure to measure"
    return extra


def gather(session: Session, tenant_id: int, request: ReportRequest, live: LiveSource) -> Inputs:
    """Read what `request` needs; `session` should be confined to `tenant_id` (RLS)."""
    tenant = session.get(Tenant, tenant_id)
    name = tenant.name if tenant is not None else f"tenant {tenant_id}"
    needs_book = request.type in (ReportType.DAILY_RISK, ReportType.EXPOSURE)
    book = live.book(tenant_id) if needs_book else None
    account = None
    deals: list[DealRecord] = []
    if request.type is ReportType.ACCOUNT_STATEMENT:
        assert request.login is not None
        account = live.account(tenant_id, request.login)
        deals = _deals(session, tenant_id, request)
    history = _history(session, tenant_id, request) if request.type is not ReportType.ALERTS_LOG else []
    extra = _desk(session, tenant_id, request, live) if request.type in DESK_TYPES else {}
    if "deals" in extra:
        deals = extra.pop("deals")
    return Inputs(name, request, book, _alerts(session, tenant_id, request), history, account, deals, **extra)
