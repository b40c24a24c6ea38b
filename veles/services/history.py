"""Risk history queries: one account's or one book's equity, margin and P/L over a time range.

Points are stored once a minute (`models.history.RESOLUTION`); a chart of a month needs far fewer,
so a query names a coarser `resolution` and gets the last point of each bucket (these are
snapshots: the last value is where the bucket ended). A query may return at most `MAX_POINTS`
buckets, which bounds both the answer and the rows read: a longer range must use a coarser
resolution, and the refusal says which field to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, field_validator
from sqlmodel import Session, col, select

from models.accounts import Book, ClientAccount
from models.history import HistoryPoint, RiskHistory
from models.tenancy import Tenant
from veles.plans import PLANS
from veles.services.errors import InvalidInput, NotFound, PlanLimit, validated

MAX_POINTS = 2_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Resolution(StrEnum):
    """Bucket widths a query may ask for."""

    MINUTE = "1m"
    FIVE_MINUTES = "5m"
    FIFTEEN_MINUTES = "15m"
    HOUR = "1h"
    DAY = "1d"

    @property
    def width(self) -> timedelta:
        """The bucket's length."""
        return _WIDTHS[self]


_WIDTHS = {
    Resolution.MINUTE: timedelta(minutes=1),
    Resolution.FIVE_MINUTES: timedelta(minutes=5),
    Resolution.FIFTEEN_MINUTES: timedelta(minutes=15),
    Resolution.HOUR: timedelta(hours=1),
    Resolution.DAY: timedelta(days=1),
}


class BookSeries(StrEnum):
    """Which book series: the A book, the B book, or the tenant's total."""

    A = "A"
    B = "B"
    TOTAL = "total"


class HistoryQuery(BaseModel):
    """A time range [start, end) and the bucket width; times without a zone are taken as UTC.
    Other keys are ignored: the API reads it from a query string that also carries `series`."""

    start: datetime
    end: datetime
    resolution: Resolution = Resolution.MINUTE

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError("is out of the range of dates in UTC") from None


def _checked(query: HistoryQuery | Mapping[str, Any]) -> HistoryQuery:
    q = validated(HistoryQuery, query)
    if q.end <= q.start:
        raise InvalidInput("end", "must be after start")
    buckets = (q.end - q.start) / q.resolution.width
    if buckets > MAX_POINTS:
        raise InvalidInput(
            "resolution",
            f"{q.resolution.value} over this range gives {int(buckets)} points, more than {MAX_POINTS}: "
            "choose a coarser resolution or a shorter range",
        )
    return q


def _kept(db: Session, tenant_id: int, q: HistoryQuery, now: datetime | None = None) -> None:
    """PlanLimit when the whole range ended before the plan's retention began (those points were
    pruned: `veles.services.recorder`), so an empty answer is not taken for a quiet book. A range
    that only starts before it is answered with what is kept."""
    tenant = db.get(Tenant, tenant_id)
    if tenant is None:
        return
    limits = PLANS[tenant.plan.value]
    since = (now or datetime.now(UTC)) - timedelta(days=limits.history_days)
    if q.end <= since:
        raise PlanLimit(f"the {limits.name} plan keeps {limits.history_days} days of history (since "
                        f"{since:%Y-%m-%d %H:%M} UTC) and this range ends before that: upgrade to keep more")


def _downsample(rows: list[RiskHistory], width: timedelta) -> list[HistoryPoint]:
    """The last row of each bucket (rows come ordered by time)."""
    last: dict[int, RiskHistory] = {}
    for row in rows:
        last[(row.ts.astimezone(UTC) - _EPOCH) // width] = row
    return [HistoryPoint.of(r) for r in last.values()]


def _points(db: Session, tenant_id: int, q: HistoryQuery, *where: Any) -> list[HistoryPoint]:
    statement = select(RiskHistory).where(
        RiskHistory.tenant_id == tenant_id, col(RiskHistory.ts) >= q.start, col(RiskHistory.ts) < q.end,
        *where,
    ).order_by(col(RiskHistory.ts))
    return _downsample(list(db.exec(statement).all()), q.resolution.width)


def account_history(
    db: Session, tenant_id: int, login: int, query: HistoryQuery | Mapping[str, Any]
) -> list[HistoryPoint]:
    """One account's points in the range; NotFound when the tenant has never had that account."""
    q = _checked(query)
    known = db.exec(select(ClientAccount.id).where(ClientAccount.tenant_id == tenant_id,
                                                   ClientAccount.login == login)).first()
    if known is None:
        known = db.exec(select(RiskHistory.id).where(RiskHistory.tenant_id == tenant_id,
                                                     RiskHistory.account_login == login)).first()
    if known is None:
        raise NotFound(f"No account {login}.")
    _kept(db, tenant_id, q)  # after the tenancy check: another tenant's login is a 404 whatever the range
    return _points(db, tenant_id, q, RiskHistory.account_login == login)


def book_history(
    db: Session, tenant_id: int, series: BookSeries, query: HistoryQuery | Mapping[str, Any]
) -> list[HistoryPoint]:
    """The A book's, the B book's or the whole tenant's points in the range."""
    q = _checked(query)
    _kept(db, tenant_id, q)
    book = None if series is BookSeries.TOTAL else Book(series.value)
    book_filter = col(RiskHistory.book).is_(None) if book is None else RiskHistory.book == book
    return _points(db, tenant_id, q, col(RiskHistory.account_login).is_(None), book_filter)
