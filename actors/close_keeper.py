"""The engine keeps each symbol's daily close from its live feeds, in the `daily_close` table: the
history VaR is measured over.

Every `CLOSES_EVERY_S` the supervisor hands its latest quotes here; each symbol's mid price is
written as the close of the quote's day (UTC, from the quote's own time), rewritten while the day
runs, so the last write of a day is its close. A server that keeps its own chart history (the
simulated broker's `daily_history`; a real server's D1 bars would come the same way) back-fills
the days before the engine started, never overwriting a close the engine recorded itself. Writes
are blocking: the supervisor calls these in a worker thread, and a failure (the database away) is
logged and tried again next time, since the next write carries the same closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from models.db import tenant_session
from models.market import DailyClose
from veles.mt5.history import DailyHistory
from veles.risk.events import Quote

log = logging.getLogger(__name__)

CLOSES_EVERY_S = 60.0
_BATCH = 2_000  # rows per INSERT: a three-year back-fill of 40 symbols is ~30,000 rows


def _insert(session: Any) -> Any:
    dialect = session.connection().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def quote_day(quote: Quote) -> date:
    """The UTC day a quote belongs to (its own time, not the clock of the process)."""
    return datetime.fromtimestamp(quote.time_msc / 1000, UTC).date()


def record_closes(url: str, tenant_id: int, quotes: Mapping[str, Quote]) -> int:
    """Write each quote's mid as its symbol's close of the quote's day (upsert); rows written."""
    rows = [{"tenant_id": tenant_id, "symbol": name, "day": quote_day(q), "close": (q.bid + q.ask) / 2,
             "updated_at": datetime.now(UTC)}
            for name, q in quotes.items() if q.time_msc > 0 and q.bid > 0 and q.ask > 0]
    if not rows:
        return 0
    with tenant_session(url, tenant_id) as session:
        insert = _insert(session)(DailyClose)
        statement = insert.on_conflict_do_update(
            index_elements=["tenant_id", "symbol", "day"],
            set_={"close": insert.excluded.close, "updated_at": insert.excluded.updated_at},
        )
        session.execute(statement, rows)
    return len(rows)


def backfill_closes(url: str, tenant_id: int, history: DailyHistory) -> int:
    """Store a server's chart history for the days the table lacks (recorded closes stay)."""
    now = datetime.now(UTC)
    rows = [{"tenant_id": tenant_id, "symbol": symbol, "day": date.fromisoformat(day), "close": close,
             "updated_at": now}
            for symbol, closes in history.closes.items()
            for day, close in zip(history.dates, closes, strict=True)]
    with tenant_session(url, tenant_id) as session:
        insert = _insert(session)(DailyClose).on_conflict_do_nothing(
            index_elements=["tenant_id", "symbol", "day"])
        for start in range(0, len(rows), _BATCH):
            session.execute(insert, rows[start : start + _BATCH])
    return len(rows)
