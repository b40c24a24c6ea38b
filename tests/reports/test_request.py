"""Bad report requests are refused with the field at fault named, before anything is queued."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.reports import ReportFormat, ReportType
from veles.reports.errors import ReportInputError
from veles.reports.request import parse_request

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def parse(**fields: object) -> object:
    raw = {
        "type": "daily_risk",
        "start": "2026-11-21T00:00",
        "end": "2026-11-22T00:00",
        "time_zone": "Europe/Berlin",
        **fields,
    }
    return parse_request(raw, NOW, retention_days=90, max_range_days=31)


def test_a_good_request_is_read_in_its_time_zone() -> None:
    request = parse(format="xlsx")
    assert request.type is ReportType.DAILY_RISK
    assert request.format is ReportFormat.XLSX
    assert request.period.start == datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # midnight in Berlin
    assert "Europe/Berlin" in request.period.label()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"type": "toxic_accounts"}, "type", "is not one of"),
        ({"format": "docx"}, "format", "is not one of"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not a known IANA"),
        ({"end": "2026-11-21T00:00"}, "end", "the range is empty"),
        ({"start": "2026-11-22T00:00", "end": "2026-11-21T00:00"}, "end", "the range is empty"),
        ({"start": "2026-01-01T00:00", "end": "2026-01-02T00:00"}, "start", "retention window"),
        ({"start": "2026-12-01T00:00", "end": "2026-12-02T00:00"}, "start", "future"),
        ({"start": "2026-10-01T00:00"}, "end", "longer than 31 days"),
        ({"start": "yesterday"}, "start", "not an ISO date"),
        ({"end": None}, "end", "required"),
        ({"type": "account_statement"}, "login", "needs the account's login"),
        ({"login": 1001}, "login", "only account statements"),
    ],
)
def test_each_bad_field_is_named(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ReportInputError, match=words) as caught:
        parse(**fields)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("login", [2**70, 2**64 - 1, 2**63])
def test_a_login_beyond_the_database_range_is_refused_naming_the_field(login: int) -> None:
    """Found by an attacker's test: login 2^70 was queued and failed showing raw SQL. MT5 logins
    are unsigned 64-bit but the database column is a signed bigint, so that is the ceiling."""
    with pytest.raises(ReportInputError) as refused:
        parse(type="account_statement", login=login)
    assert refused.value.field == "login"
    assert str(2**63 - 1) in str(refused.value)
    assert parse(type="account_statement", login=2**63 - 1).login == 2**63 - 1  # type: ignore[attr-defined]
