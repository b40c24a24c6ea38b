"""The engine's deal log: every deal an account actor applied, written to the `deal` table.

Why here, in the aggregator's process: deals reach the aggregator only after the account actor
applied them, so refused deals (duplicates, unknown symbols) never reach the log, and the
aggregator already holds the tenant's database URL (it stores alerts the same way). Why not the
risk-history recorder: it follows book diffs, which carry figures, not deals.

Writing must never slow the book: `add` only appends to a list; a thread writes the list every
`flush_s` in one multi-row INSERT that skips rows already there (the (tenant, login, ticket) key),
so a restarted aggregator or a resent deal adds nothing twice. A database that is away keeps the
deals pending (up to `max_pending`, then the oldest are dropped with a warning) and the thread
tries again, waiting twice as long after each failure up to `MAX_RETRY_S` (so an outage costs one
warning per attempt, not two a second, and the database is not hammered as it comes back); the
first write that succeeds returns it to `flush_s`. The retries (tenacity) stop after `give_up_s`
(10 minutes): what is pending then is dropped from the log, counted in `dropped` and logged as an
error, and the next deals start afresh, so an outage never keeps the thread retrying the same rows
for ever. The thread runs only while deals come: a tick that finds nothing pending ends it, and
the next deal starts one (an idle tenant has no thread and no timer; many tenants share a tenant
host's process, `actors/tenant_host.py`). `close` (the tenant stops) ends it and writes what is
pending once more; without it, a tenant removed from a tenant host left a thread writing for it
for as long as the host lived. Deals still pending when the process dies are lost from the log
(at most `flush_s` of them in normal running); the MT5 server keeps the authoritative history.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_any,
    stop_when_event_set,
)

from models.db import tenant_session
from models.deals import DealRecord
from veles.risk.events import Deal

log = logging.getLogger(__name__)

_COMMENT = 64  # DealRecord.comment's length
MAX_RETRY_S = 30.0  # the longest wait between two attempts while the database is away
GIVE_UP_S = 600.0  # a write is retried this long; then its deals are dropped from the log


class NotWritten(Exception):
    """A write attempt failed (the database is away); the rows stay pending."""


def retry_wait(flush_s: float, failures: int) -> float:
    """Seconds until the next write after `failures` failed attempts in a row (0: a normal flush)."""
    return min(MAX_RETRY_S, flush_s * 2.0**failures) if failures else flush_s


def deal_row(tenant_id: int, deal: Deal) -> dict[str, Any]:
    """A `deal` row's columns for one applied deal."""
    return {
        "tenant_id": tenant_id,
        "login": deal.login,
        "ticket": deal.ticket,
        "executed_at": datetime.fromtimestamp(deal.time_msc / 1000, UTC),
        "kind": deal.kind.value,
        "entry": deal.entry.value,
        "symbol": deal.symbol,
        "volume": deal.volume,
        "price": deal.price,
        "position_id": deal.position_id,
        "profit": deal.profit,
        "commission": deal.commission,
        "swap": deal.swap,
        "amount": deal.amount,
        "comment": deal.comment[:_COMMENT],
    }


def write_deals(url: str, tenant_id: int, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` as the tenant (row-level security), skipping deals already logged."""
    if not rows:
        return
    with tenant_session(url, tenant_id) as db:
        dialect = db.connection().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(DealRecord).on_conflict_do_nothing(index_elements=["tenant_id", "login", "ticket"])
        db.connection().execute(statement, rows)


class DealLog:
    """One tenant's deals on their way to the database (see the module's docstring)."""

    def __init__(self, url: str, tenant_id: int, flush_s: float = 0.5, max_pending: int = 100_000,
                 give_up_s: float = GIVE_UP_S) -> None:
        self.url, self.tenant_id = url, tenant_id
        self._flush_s, self._max_pending, self._give_up_s = flush_s, max_pending, give_up_s
        self.dropped = 0  # deals given up on (GIVE_UP_S of failed writes, or over max_pending)
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one write at a time: the thread's or a caller's
        self._in_flight = 0  # rows taken from _pending by the write under way
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.failures = 0  # failed attempts in a row (the thread backs off by it)

    def add(self, deals: Sequence[Deal]) -> None:
        """Queue applied deals for writing; returns at once and never raises."""
        if not deals:
            return
        rows = [deal_row(self.tenant_id, deal) for deal in deals]
        with self._lock:
            self._pending.extend(rows)
            dropped = len(self._pending) - self._max_pending
            if dropped > 0:
                del self._pending[:dropped]
                self.dropped += dropped
                log.warning("tenant %s deal log: database away too long, %d oldest deals dropped",
                            self.tenant_id, dropped)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name=f"deal-log-{self.tenant_id}",
                                                daemon=True)
                self._thread.start()

    def pending(self) -> int:
        """Deals not written yet, the write under way included (operators and tests read it)."""
        with self._lock:
            return len(self._pending) + self._in_flight

    def flush(self) -> int:
        """Write what is pending now; returns how many rows were written (0 if the database is
        away: they stay pending).

        Writes are serialised: a caller's flush waits for the thread's and then finds the rows it
        left. Nothing pending is not an attempt: it neither touches the database nor resets the
        failure count (an empty "success" while the thread held the rows used to end the backoff).
        """
        with self._writing:
            with self._lock:
                rows, self._pending = self._pending, []
                self._in_flight = len(rows)
            if not rows:
                return 0
            try:
                write_deals(self.url, self.tenant_id, rows)
            except SQLAlchemyError as exc:
                self.failures += 1
                wait = retry_wait(self._flush_s, self.failures)
                log.warning("tenant %s deal log: %d deals not written yet (attempt %d, next in %.1f s): %s",
                            self.tenant_id, len(rows), self.failures, wait, exc)
                with self._lock:
                    self._pending[:0] = rows
                    self._in_flight = 0
                return 0
            with self._lock:
                self._in_flight = 0
            self.failures = 0
            return len(rows)

    def close(self, timeout_s: float = 5.0) -> int:
        """The tenant stops: end the thread and write what is pending once more; returns the rows
        written (blocking: run it off an event loop). Deals added afterwards are still queued, and
        written only by `flush`."""
        self._closed.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return self.flush()

    def _run(self) -> None:
        """Every `flush_s`, write what is pending; a failed write is retried with backoff for
        `give_up_s`, then what is pending is given up on. Ends at a tick with nothing pending, or
        at `close`."""
        stop = stop_any(stop_after_delay(self._give_up_s), stop_when_event_set(self._closed))
        retrying = Retrying(retry=retry_if_exception_type(NotWritten), stop=stop, wait=self._wait,
                            sleep=self._sleep, reraise=True)
        while not self._closed.wait(self._flush_s):  # the pace of normal flushes, not a retry loop
            with self._lock:
                if not self._pending:  # idle: no thread until the next deal (`add` starts one)
                    self._thread = None
                    return
            try:
                retrying(self._attempt)
            except NotWritten:
                if self._closed.is_set():
                    break  # `close` tries what is pending once more itself
                self._give_up()
        with self._lock:
            if self._thread is threading.current_thread():
                self._thread = None

    def _sleep(self, seconds: float) -> None:
        self._closed.wait(seconds)  # a backoff that `close` cuts short

    def _wait(self, _state: RetryCallState) -> float:
        return retry_wait(self._flush_s, self.failures)

    def _attempt(self) -> None:
        self.flush()
        if self.failures:
            raise NotWritten

    def _give_up(self) -> None:
        with self._lock:
            lost, self._pending = len(self._pending), []
            self.dropped += lost
        self.failures = 0
        log.error("tenant %s deal log: database away for %g s; %d deals dropped from the log (the MT5 "
                  "server keeps the history)", self.tenant_id, self._give_up_s, lost)
