"""The alerts page's list, kept current by the tenant's ordered alert stream instead of the database.

Why. The page used to read the database again every second while the book moved, under every open
tab, though alerts change far less often than prices. Now a tab reads its list once (`load_page`,
with the tenant's alert sequence number read first) and then applies each alert event the engine
numbers (`AlertWatch.alerts`: raised, repeated, cleared, in `seq` order) to the list it holds, with
no query. It reads the database again only when it cannot know the answer from the event: a
number missing (`seq` more than one past the page's: a message the tab's latest-wins box or the
stream lost), an event the stream reloaded itself, a repeat of an alert the page does not hold, a
cleared alert a "resolved" page does not hold; and on a filter change. An idle page makes no
query at all.

Acknowledging or resolving takes no sequence number: the tab that does it reloads at once; other
tabs see it at their next reload (their next event that needs one, a filter change, or a page
load).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from actors.wire import Row
from models.alerts import AlertState, Severity
from veles.services.alert_watch import AlertWatch, get_alert_watch
from veles.services.alerts import AlertView, alert_seq, list_alerts


@dataclasses.dataclass(frozen=True, slots=True)
class AlertPage:
    """One tab's list: the alerts matching its filters, newest first, as of alert number `seq`.

    `generation` names the load it came from: a tab shows an updated page only while no handler has
    loaded another one meanwhile (a filter change, an acknowledgement)."""

    seq: int
    views: tuple[AlertView, ...]
    state: str | None  # the state filter (None: all)
    severity: str | None  # the severity filter (None: all)
    limit: int
    generation: int = 0

    def _fits(self, view: AlertView) -> bool:
        return ((self.state is None or view.state.value == self.state)
                and (self.severity is None or view.severity.value == self.severity))

    def applied(self, message: Any) -> AlertPage | None:
        """The page after one alert event (itself when the event changes nothing it shows), or
        None when only the database can say (the caller reloads)."""
        seq, row_id = (message.get("seq"), message.get("id")) if isinstance(message, dict) else (None, None)
        if not isinstance(seq, int) or isinstance(seq, bool):
            return self  # not stored (an engine without a database, junk): the page lists stored alerts
        if seq <= self.seq:
            return self  # already reflected by the load
        if seq != self.seq + 1 or message.get("reloaded") or not isinstance(row_id, int):
            return None  # a number missing, or the stream's own reload: read the database
        at = {view.id: view for view in self.views}
        known = at.get(row_id)
        if message.get("status") == "cleared":
            if known is None:  # a "resolved" page may need to show it: only the database knows it
                shows_resolved = self.state in (None, AlertState.RESOLVED.value)
                return None if shows_resolved else dataclasses.replace(self, seq=seq)
            when = _time(message)
            return self._with(seq, dataclasses.replace(known, state=AlertState.RESOLVED, resolved_at=when,
                                                       seq=seq))
        if message.get("status") != "raised":
            return None
        try:
            severity = Severity(message.get("severity"))
            value = float(message["value"]) if message.get("value") is not None else float("nan")
            repeats = int(message.get("repeats") or 1)
        except (TypeError, ValueError, KeyError):
            return None
        when = _time(message)
        if known is not None:  # a repeat folded into the row: open again (acknowledged stays so)
            state = AlertState.ACKNOWLEDGED if known.acknowledged_by is not None else AlertState.OPEN
            return self._with(seq, dataclasses.replace(
                known, state=state, resolved_at=None, value=value, message=str(message.get("message", "")),
                repeats=repeats, last_raised_at=when, seq=seq))
        if repeats > 1:
            return None  # a repeat of an alert this page does not hold: its state is in the database
        view = AlertView(row_id, None, severity, str(message.get("subject", "")), value,
                         str(message.get("message", "")), AlertState.OPEN, None, None, None, when, 1, None,
                         seq, None)
        return self._with(seq, view, new=True)

    def _with(self, seq: int, view: AlertView, new: bool = False) -> AlertPage:
        views = [v for v in self.views if v.id != view.id]
        if self._fits(view):
            if new:
                views.insert(0, view)
            else:
                views = [view if v.id == view.id else v for v in self.views]
        return dataclasses.replace(self, seq=seq, views=tuple(views[: self.limit]))


def _time(message: Row) -> datetime:
    msc = message.get("time_msc")
    if isinstance(msc, int | float) and not isinstance(msc, bool):
        return datetime.fromtimestamp(msc / 1000, UTC)
    return datetime.now(UTC)


def load_page(db: Session, tenant_id: int, chosen: dict[str, Any], generation: int = 0) -> AlertPage:
    """The page for these filters (`list_alerts`' fields, with `limit`), read from the database; the
    sequence number first, so alerts changed meanwhile carry higher numbers and are applied after."""
    seq = alert_seq(db, tenant_id)
    views = list_alerts(db, tenant_id, chosen)
    return AlertPage(seq, tuple(views), chosen.get("state"), chosen.get("severity"),
                     int(chosen.get("limit", 100)), generation)


async def follow_page(
    tenant_id: int, idle_s: float,
    current: Callable[[], Awaitable[AlertPage | None]],
    show: Callable[[AlertPage], Awaitable[None]],
    reload: Callable[[AlertPage], Awaitable[AlertPage | None]],
    watch: AlertWatch | None = None,
) -> None:
    """Keep one tab's page current until `current()` says the tab is gone (None). For each alert
    event: the page after it (`show`), or, when only the database can say, `reload(page)`'s
    answer. Every `idle_s` without an event `current()` is asked again (and nothing is read)."""
    async with (watch or get_alert_watch()).alerts(tenant_id, idle_s) as events:
        async for message in events:
            page = await current()
            if page is None:
                return
            if message is None:
                continue
            after = page.applied(message)
            if after is None:
                after = await reload(page)
                if after is None:
                    continue
            if after is not page:
                await show(after)
            await asyncio.sleep(0)

