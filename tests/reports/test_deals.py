"""Deals in account statements: the aggregator's deal log writes every applied deal once to the
real PostgreSQL, under the tenant's row-level security; a statement lists the account's deals of
its period (and no other account's, period's or tenant's) in the PDF and the workbook."""

from __future__ import annotations

import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from actors.deal_log import MAX_RETRY_S, DealLog, retry_wait
from actors.mt5_account import AccountActor
from actors.report_worker import detail_row
from actors.risk_aggregator import BookPublisher
from models.db import tenant_session, upgrade
from models.deals import DealRecord
from models.reports import ReportFormat, ReportType
from tests.models.conftest import reset_schema
from tests.reports.conftest import seed_brokers
from tests.reports.test_render import pdf_pages
from veles.mt5.catalog import LISTINGS_BY_NAME
from veles.mt5.simulator import SimulatedBroker
from veles.reports.builders import build
from veles.reports.formatting import price_format
from veles.reports.gather import Row, gather
from veles.reports.render import render
from veles.reports.request import Period, ReportRequest
from veles.risk.events import Deal, DealKind

pytestmark = [pytest.mark.postgres]


class Accounts:
    """The engine as a statement asks it: real risk-core figures and positions of each account."""

    def __init__(self, hosts: dict[int, AccountActor]) -> None:
        self._hosts = hosts

    def book(self, tenant_id: int) -> Row:
        raise AssertionError("a statement must not read the whole book")

    def account(self, tenant_id: int, login: int) -> Row | None:
        host = self._hosts.get(login)
        return detail_row(host.detail()) if host is not None else None


@pytest.fixture(scope="module")
def market() -> tuple[Accounts, list[Deal]]:
    """Eight simulated accounts and the deals of 400 polls (the busiest account has dozens)."""
    broker = SimulatedBroker(accounts=8, seed=3, warmup=600.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    hosts = {s.login: AccountActor(s, symbols, board) for s in broker.accounts()}
    deals: list[Deal] = []
    for _ in range(400):
        deals.extend(broker.poll().deals)
    return Accounts(hosts), deals


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:
    reset_schema(pg_url)
    upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="module")
def brokers(db: str) -> dict[str, int]:
    """Alpha and Beta: their tenant ids."""
    users = seed_brokers(db, " Deals")
    return {"Alpha": users["Alpha-risk_manager"][0], "Beta": users["Beta-risk_manager"][0]}


def busiest(deals: list[Deal]) -> int:
    logins = [d.login for d in deals]
    return max(set(logins), key=logins.count)


def statement(login: int, start: datetime, end: datetime) -> ReportRequest:
    return ReportRequest(ReportType.ACCOUNT_STATEMENT, ReportFormat.PDF, Period(start, end, "Europe/London"),
                         login)


def test_applied_deals_are_logged_once_and_a_statement_lists_them(
    db: str, brokers: dict[str, int], market: tuple[Accounts, list[Deal]], artifacts: Path
) -> None:
    accounts, deals = market
    alpha, beta = brokers["Alpha"], brokers["Beta"]
    publisher = BookPublisher(alpha, None, db)
    assert publisher.deal_log is not None
    publisher.apply([], time.time(), deals)
    publisher.apply([], time.time(), deals[:5])  # resent (a reconnect, a restarted aggregator)
    publisher.deal_log.flush()
    with tenant_session(db, alpha) as session:
        assert session.exec(select(func.count()).select_from(DealRecord)).one() == len(deals)
    with tenant_session(db, beta) as session:  # row-level security: another broker sees none
        assert session.exec(select(func.count()).select_from(DealRecord)).one() == 0

    login = busiest(deals)
    own = sorted((d for d in deals if d.login == login), key=lambda d: (d.time_msc, d.ticket))
    first, last = (datetime.fromtimestamp(d.time_msc / 1000, UTC) for d in (own[0], own[-1]))
    request = statement(login, first - timedelta(minutes=1), last + timedelta(minutes=1))
    with tenant_session(db, alpha) as session:
        inputs = gather(session, alpha, request, accounts)
    assert [d.ticket for d in inputs.deals] == [d.ticket for d in own]
    with tenant_session(db, beta) as session:
        assert gather(session, beta, request, accounts).deals == []
    later = statement(login, last + timedelta(seconds=1), last + timedelta(hours=1))
    with tenant_session(db, alpha) as session:
        assert gather(session, alpha, later, accounts).deals == []

    doc = build(inputs, top=25, generated_at=last + timedelta(minutes=2))
    text = "\n".join(pdf_pages(render(doc, ReportFormat.PDF).content, artifacts, "statement-deals"))
    assert "Deals in the period" in text
    for deal in own:
        assert str(deal.ticket) in text
    trades = [d for d in own if d.kind in (DealKind.BUY, DealKind.SELL)]
    assert trades
    for deal in trades:  # each price to its symbol's digits, as the terminal shows it
        assert f"{deal.price:,.{LISTINGS_BY_NAME[deal.symbol].spec.digits}f}" in text
    realised = sum(d.profit + d.commission + d.swap for d in own)
    assert f"{realised:,.2f}" in text
    other = next(d for d in deals if d.login != login)
    assert str(other.ticket) not in text

    workbook = render(doc, ReportFormat.XLSX).content
    (artifacts / "statement-deals.xlsx").write_bytes(workbook)
    with zipfile.ZipFile(BytesIO(workbook)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
        names = book.read("xl/workbook.xml").decode()
        styles = book.read("xl/styles.xml").decode()
    assert "Deals in the period" in names
    assert own[0].symbol in strings
    for digits in {LISTINGS_BY_NAME[d.symbol].spec.digits for d in trades}:  # typed, to its digits
        assert f'formatCode="{price_format(digits)}"' in styles


def test_deals_wait_while_the_database_is_away(market: tuple[Accounts, list[Deal]]) -> None:
    """A log whose database does not answer keeps its deals for the next flush instead of losing
    them or raising into the engine."""
    _, deals = market
    publisher = BookPublisher(1, None, "postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert publisher.deal_log is not None
    publisher.apply([], time.time(), deals[:3])
    assert publisher.deal_log.flush() == 0
    assert publisher.deal_log.pending() == 3
    assert publisher.deal_log.flush() == 0
    assert publisher.deal_log.pending() == 3
    # each failed attempt counts, the log's own thread's too (it may have tried in between)
    assert publisher.deal_log.failures >= 2


def test_failed_attempts_in_a_row_are_counted_and_an_empty_flush_is_not_an_attempt(
        market: tuple[Accounts, list[Deal]]) -> None:
    """The backoff follows the failures in a row; a flush with nothing to write (the thread held the
    rows) must neither reach the database nor end the backoff, as it once did."""
    _, deals = market
    log = DealLog("postgresql+psycopg://postgres@127.0.0.1:1/none", 1, flush_s=60.0)  # its thread sleeps
    log.add(deals[:3])
    assert log.flush() == 0
    assert log.flush() == 0
    assert log.failures == 2
    assert log.pending() == 3
    assert retry_wait(60.0, log.failures) == MAX_RETRY_S  # 240 s capped, not 60 s

    idle = DealLog("postgresql+psycopg://postgres@127.0.0.1:1/none", 1, flush_s=60.0)
    idle.failures = 2  # as after two failed attempts, with the rows now in the thread's hands
    assert idle.flush() == 0
    assert idle.failures == 2


def test_the_log_backs_off_while_the_database_is_away_and_returns_to_its_pace() -> None:
    """Each failed attempt doubles the wait up to MAX_RETRY_S; a success goes back to flush_s."""
    waits = [retry_wait(0.5, failures) for failures in range(9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_RETRY_S, MAX_RETRY_S, MAX_RETRY_S]


def test_a_log_whose_database_comes_back_writes_what_waited(db: str, brokers: dict[str, int]) -> None:
    """Deals kept through failed attempts are written once the database answers again."""
    tenant = brokers["Beta"]
    log = DealLog("postgresql+psycopg://postgres@127.0.0.1:1/none", tenant)
    log.add([Deal(ticket=70_000_000 + n, login=7001, kind=DealKind.BALANCE, time_msc=1_790_000_000_000 + n,
                  amount=5.0, comment="deposit") for n in range(4)])
    assert log.flush() == 0
    assert log.flush() == 0
    log.url = db  # the database is back
    assert log.flush() == 4
    assert (log.failures, log.pending()) == (0, 0)
    with tenant_session(db, tenant) as session:
        tickets = sorted(d.ticket for d in session.exec(select(DealRecord).where(DealRecord.login == 7001)))
    assert tickets == [70_000_000 + n for n in range(4)]


def test_statement_without_deals_says_so(
    db: str, brokers: dict[str, int], market: tuple[Accounts, list[Deal]]
) -> None:
    accounts, deals = market
    tenant = brokers["Beta"]  # logged none
    now = datetime.now(UTC)
    with tenant_session(db, tenant) as session:
        inputs = gather(session, tenant, statement(busiest(deals), now - timedelta(days=1), now), accounts)
    doc = build(inputs, top=25, generated_at=now)
    table = next(t for t in doc.tables if t.title == "Deals in the period")
    assert table.rows == []
    assert table.empty == "No deals in this period."


def test_a_log_whose_database_stays_away_gives_up_after_its_window(
        market: tuple[Accounts, list[Deal]]) -> None:
    """The thread's backoff was a hand loop retrying the same rows for ever; now it stops after
    `give_up_s`: the rows are dropped and counted, and the thread goes back to its pace."""
    _, deals = market
    log = DealLog("postgresql+psycopg://postgres@127.0.0.1:1/none", 1, flush_s=0.05, give_up_s=0.5)
    log.add(deals[:3])
    deadline = time.monotonic() + 20
    while log.dropped < 3:
        assert time.monotonic() < deadline, (log.pending(), log.failures)
        time.sleep(0.05)
    assert (log.dropped, log.pending()) == (3, 0)
    log.add(deals[3:4])  # later deals are tried afresh, not dropped at once
    assert log.pending() == 1


def test_the_log_keeps_no_thread_while_idle_and_none_after_close(db: str, brokers: dict[str, int]) -> None:
    """Many tenants share a tenant host's process: a tenant with no deals coming has no thread
    of its own, and a tenant that stops (closed) ends its thread after writing what was pending,
    instead of leaving it writing for it for as long as the host lives."""
    tenant = brokers["Beta"]
    log = DealLog(db, tenant, flush_s=0.05)

    def deals(first: int, count: int) -> list[Deal]:
        return [Deal(ticket=71_000_000 + n, login=7002, kind=DealKind.BALANCE, time_msc=1_790_000_000_000 + n,
                     amount=1.0, comment="deposit") for n in range(first, first + count)]

    def threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name == f"deal-log-{tenant}"]

    log.add(deals(0, 3))
    assert threads()
    deadline = time.monotonic() + 20
    while threads():  # written at a tick, then the next tick finds nothing and ends the thread
        assert time.monotonic() < deadline, log.pending()
        time.sleep(0.02)
    assert log.pending() == 0
    log.add(deals(3, 2))  # the next deal starts a thread again
    assert threads()
    log.close()
    assert threads() == []
    assert log.pending() == 0
    log.add(deals(5, 1))  # a closed log starts no thread: only an explicit flush writes
    assert threads() == []
    assert log.flush() == 1
    with tenant_session(db, tenant) as session:
        tickets = sorted(d.ticket for d in session.exec(select(DealRecord).where(DealRecord.login == 7002)))
    assert tickets == [71_000_000 + n for n in range(6)]
