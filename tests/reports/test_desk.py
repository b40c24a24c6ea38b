"""The daily management report and the stress report, gathered from the real PostgreSQL (deals,
saved scenarios, daily closes) and a live book of a simulated broker, built and rendered to PDF and
Excel: every stress and VaR figure is the risk core's on the same book, money in and out and the
volumes are the deals'. The PDF is left in the artifacts (and looked at as PNG pages)."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from actors.close_keeper import backfill_closes
from models.db import session_scope, tenant_session, upgrade
from models.deals import DealRecord
from models.reports import ReportFormat, ReportType
from models.stress import StressScenario
from models.tenancy import Tenant
from tests.models.conftest import reset_schema
from veles.mt5.simulator import SimulatedBroker
from veles.reports.builders import build
from veles.reports.document import Document, Table
from veles.reports.errors import ReportError
from veles.reports.gather import gather
from veles.reports.render import render
from veles.reports.request import Period, ReportRequest
from veles.risk.money import from_minor
from veles.risk.stress import BookPart, book_symbols, parse_scenario, stress_book
from veles.services.var import book_exposure, load_closes, var_view

START_MSC = 1_764_939_600_000
NOW = datetime(2025, 12, 5, 16, 0, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=1), NOW, "UTC")


class Book:
    """A live source holding a simulated broker's book (the engine's `book_parts`)."""

    def __init__(self, parts: list[BookPart]) -> None:
        self.parts = parts

    def book(self, tenant_id: int) -> dict[str, object]:
        raise ReportError("the desk reports read the book per connection, not the aggregator's snapshot")

    def account(self, tenant_id: int, login: int) -> None:
        raise ReportError("not a statement")

    def book_parts(self, tenant_id: int) -> list[BookPart]:
        return self.parts


@pytest.fixture(scope="module")
def broker() -> SimulatedBroker:
    return SimulatedBroker("desk", accounts=120, seed=7, start_msc=START_MSC, warmup=120.0)


@pytest.fixture
def world(pg_url: str, broker: SimulatedBroker) -> tuple[str, int, Book]:
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Desk Broker")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tenant_id = tenant.id
    parts = [BookPart("desk", {s.name: s for s in broker.symbols()}, dict(broker.market.quotes()),
                      tuple(broker.accounts()))]
    logins = [s.login for s in parts[0].snapshots]
    with tenant_session(pg_url, tenant_id) as session:
        session.add(StressScenario(tenant_id=tenant_id, name="Gold crash", scenario="XAUUSD -15%"))
        session.add(StressScenario(tenant_id=tenant_id, name="Dollar up", scenario="USD +3% against all"))
        at = NOW - timedelta(hours=3)
        session.add_all([
            DealRecord(tenant_id=tenant_id, login=logins[0], ticket=1, executed_at=at, kind="balance",
                       entry="in", amount=5_000.0),
            DealRecord(tenant_id=tenant_id, login=logins[1], ticket=2, executed_at=at, kind="balance",
                       entry="in", amount=-1_200.0),
            DealRecord(tenant_id=tenant_id, login=logins[2], ticket=3, executed_at=at, kind="buy",
                       entry="in", symbol="EURUSD", volume=2.0, price=1.1),
            DealRecord(tenant_id=tenant_id, login=logins[2], ticket=4, executed_at=at, kind="sell",
                       entry="out", symbol="EURUSD", volume=2.0, price=1.2, profit=20_000.0),
            DealRecord(tenant_id=tenant_id, login=logins[3], ticket=5, executed_at=NOW - timedelta(days=3),
                       kind="balance", entry="in", amount=999.0),  # before the period: not counted
        ])
    backfill_closes(pg_url, tenant_id, broker.daily_history())
    return pg_url, tenant_id, Book(parts)


def _document(url: str, tenant_id: int, live: Book, kind: ReportType) -> Document:
    request = ReportRequest(kind, ReportFormat.PDF, PERIOD)
    with tenant_session(url, tenant_id) as session:
        inputs = gather(session, tenant_id, request, live)
    return build(inputs, top=10, generated_at=NOW)


def _table(doc: Document, starts: str) -> Table:
    return next(t for t in doc.tables if t.title.startswith(starts))


def test_the_management_report_holds_the_engines_figures(
    world: tuple[str, int, Book], artifacts: Path
) -> None:
    url, tenant_id, live = world
    doc = _document(url, tenant_id, live, ReportType.MANAGEMENT)
    currency = {s.login: s.currency for s in live.parts[0].snapshots}
    logins = list(currency)
    money = {row[0]: row[1:] for row in _table(doc, "Deposits and withdrawals").rows}
    assert money[currency[logins[0]]][0] == 5_000.0
    assert money[currency[logins[1]]][1] == 1_200.0
    assert sum(r[0] for r in money.values()) == 5_000.0  # the deposit before the period is left out
    assert _table(doc, "Traded volume by symbol").rows == [("EURUSD", 4.0, 2)]
    winners = _table(doc, "Top 10 winners").rows
    assert any(row[0] == logins[2] and row[4] == 20_000.0 for row in winners)
    stress = _table(doc, "Stress scenarios").rows
    symbols = book_symbols(live.parts)
    for name, text in (("Dollar up", "USD +3% against all"), ("Gold crash", "XAUUSD -15%")):
        result = stress_book(live.parts, parse_scenario(text, symbols))
        first = next(r for r in stress if r[0] == name)
        assert (first[1], first[2], first[3]) == (text, len(result.stopped_out), result.positions_closed)
        start = stress.index(first)
        end = next((i for i in range(start + 1, len(stress)) if stress[i][0]), len(stress))
        absorbed = {r[4]: r[5] for r in stress[start:end]}
        assert {c: from_minor(v) for c, v in result.absorbed().items()} == {
            c: v for c, v in absorbed.items() if v}
    exposure = book_exposure(live.parts)
    expected = var_view(exposure, *load_closes(url, tenant_id, list(exposure)))
    shown = {(r[0], r[1]): r[2] for r in _table(doc, "Value at Risk of the B-book").rows}
    for f in expected["var"]:
        method = "historical" if f["method"] == "historical" else "variance-covariance"
        assert shown[(method, f["confidence"] * 100)] == f["var_usd"]
    pdf = render(doc, ReportFormat.PDF).content
    (artifacts / "management-report.pdf").write_bytes(pdf)
    pages = pdfium.PdfDocument(pdf)
    assert len(pages) >= 2
    text = "".join(pages[i].get_textpage().get_text_range() for i in range(len(pages)))
    for words in ("Daily management report", "Stress scenarios", "Gold crash", "Value at Risk",
                  "Top 10 losers"):
        assert words in text
    workbook = zipfile.ZipFile(BytesIO(render(doc, ReportFormat.XLSX).content))
    assert any(name.startswith("xl/worksheets/") for name in workbook.namelist())


def test_the_stress_report_lists_each_scenario_and_who_it_stops_out(world: tuple[str, int, Book]) -> None:
    url, tenant_id, live = world
    doc = _document(url, tenant_id, live, ReportType.STRESS)
    result = stress_book(live.parts, parse_scenario("XAUUSD -15%", book_symbols(live.parts)))
    stopped = [r for r in _table(doc, "Accounts stopped out").rows if r[0] == "Gold crash"]
    assert sorted(r[1] for r in stopped) == sorted(a.login for a in result.stopped_out)
    assert [r[0] for r in _table(doc, "Scenarios").rows if r[0]] == ["Dollar up", "Gold crash"]
