"""A report request, checked field by field before anything is queued (and again before a worker
renders it, since a queued report can age out of the retention window)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.reports import ReportFormat, ReportType
from veles.reports.errors import ReportInputError


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands stored timestamps back without their zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# MT5 logins are unsigned 64-bit numbers, but the database keeps them as `bigint` (signed), so the
# largest login Veles can hold is this; a bigger one would reach the database and fail there.
MAX_LOGIN = 2**63 - 1


@dataclass(frozen=True)
class Period:
    """A half-open time range [start, end) in UTC, shown in `zone`."""

    start: datetime
    end: datetime
    zone: str

    def label(self) -> str:
        """The range as the reader's clock shows it, with the zone's name and UTC offset."""
        tz = ZoneInfo(self.zone)
        start, end = self.start.astimezone(tz), self.end.astimezone(tz)
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {self.zone} (UTC{start:%z})"


@dataclass(frozen=True)
class ReportRequest:
    """What to render: type, file format, period, and the account for a statement."""

    type: ReportType
    format: ReportFormat
    period: Period
    login: int | None = None

    def parameters(self) -> dict[str, Any]:
        """What the report row keeps in `parameters` beyond its typed columns."""
        return {"login": self.login} if self.login is not None else {}


def _choice(
    raw: Mapping[str, Any],
    field: str,
    enum: type[ReportType] | type[ReportFormat],
    default: str | None = None,
) -> Any:
    value = raw.get(field, default)
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise ReportInputError(field, f"{value!r} is not one of {choices}") from None


def check_zone(value: Any, field: str = "time_zone") -> str:
    """An IANA time zone name (Europe/London, UTC...), or ReportInputError naming `field`."""
    if not isinstance(value, str) or not value:
        raise ReportInputError(field, "give an IANA time zone such as Europe/London or UTC")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportInputError(field, f"{value!r} is not a known IANA time zone") from None
    return value


def _instant(raw: Mapping[str, Any], field: str, zone: str) -> datetime:
    """A datetime from ISO text or a datetime; one without an offset is read in `zone`."""
    value = raw.get(field)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ReportInputError(field, f"{value!r} is not an ISO date or date-time") from None
    if not isinstance(value, datetime):
        raise ReportInputError(field, "required: an ISO date-time such as 2026-11-21T00:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(ZoneInfo("UTC"))


def check_period(period: Period, now: datetime, retention_days: int, max_range_days: int) -> Period:
    """Refuse empty, future, over-long and beyond-retention ranges, naming the field at fault."""
    if period.end <= period.start:
        raise ReportInputError(
            "end",
            f"the range is empty: end {period.end:%Y-%m-%d %H:%M} UTC is not "
            f"after start {period.start:%Y-%m-%d %H:%M} UTC",
        )
    if period.start > now:
        raise ReportInputError("start", "is in the future")
    oldest = now - timedelta(days=retention_days)
    if period.start < oldest:
        raise ReportInputError(
            "start",
            f"is beyond the {retention_days}-day retention window: the oldest "
            f"data kept is from {oldest:%Y-%m-%d %H:%M} UTC",
        )
    if period.end - period.start > timedelta(days=max_range_days):
        raise ReportInputError("end", f"the range is longer than {max_range_days} days")
    return period


def parse_request(
    raw: Mapping[str, Any], now: datetime, retention_days: int, max_range_days: int
) -> ReportRequest:
    """Check a request as a form or API client sends it: `type`, `format` (pdf), `start`, `end`,
    `time_zone` (UTC) and `login` (account statements only)."""
    report_type = _choice(raw, "type", ReportType)
    report_format = _choice(raw, "format", ReportFormat, default=ReportFormat.PDF.value)
    zone = check_zone(raw.get("time_zone", "UTC"))
    period = Period(_instant(raw, "start", zone), _instant(raw, "end", zone), zone)
    check_period(period, now, retention_days, max_range_days)
    login = raw.get("login")
    if report_type is ReportType.ACCOUNT_STATEMENT:
        if isinstance(login, bool) or not isinstance(login, int) or login <= 0:
            raise ReportInputError(
                "login", "an account statement needs the account's login (a positive number)"
            )
        if login > MAX_LOGIN:
            raise ReportInputError("login", f"no account has this login: logins go up to {MAX_LOGIN}")
    elif login is not None:
        raise ReportInputError("login", f"only account statements take a login, not {report_type.value}")
    return ReportRequest(report_type, report_format, period, login)
