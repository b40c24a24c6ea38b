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

Acknowledging or resolving takes no sequence number: the tab that does it reloads at once, and
every other tab applies the change as its maker published it (`alert_state`: the alert's new
state and the number of the engine's latest event on it). It reads the database only when it
cannot apply it exactly: the page has not yet applied that engine event, or has applied a later
one; the alert belongs on the page but is not held; a full page loses the row and would show the
next one; or the watcher fell behind (a reload marker). A change the page already shows, or one a
later change overtook (acknowledged after resolved), changes nothing.
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
from veles.services.alert_watch import STATE_KIND, AlertWatch, get_alert_watch
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
        if isinstance(message, dict) and message.get("kind") == STATE_KIND:
            return self._state_applied(message)
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

    def _state_applied(self, message: Row) -> AlertPage | None:
        """The page after a person acknowledged or resolved an alert (`alert_state`), or None
        when only the database can say."""
        if message.get("reload"):
            return None  # the watcher could not hold every change
        row_id, seq = message.get("id"), message.get("seq")
        try:
            state, severity = AlertState(str(message.get("state"))), Severity(str(message.get("severity")))
            acknowledged_at = _stamp(message.get("acknowledged_at"))
            resolved_at = _stamp(message.get("resolved_at"))
        except (TypeError, ValueError):
            return self  # not a change `alert_state` made (junk on the channel): nothing to apply
        if not isinstance(row_id, int) or isinstance(row_id, bool) or isinstance(seq, bool) or not (
                seq is None or isinstance(seq, int)):
            return self
        if seq is not None and seq > self.seq:
            return None  # changed after an engine event this page has not applied yet
        known = next((view for view in self.views if view.id == row_id), None)
        if known is None:
            fits = ((self.state is None or state.value == self.state)
                    and (self.severity is None or severity.value == self.severity))
            return None if fits else self  # it belongs here now: its row is in the database
        if known.seq != seq:
            return None  # the page and the change saw different engine events on it
        if _RANK[state] <= _RANK[known.state]:
            return self  # already shown, or overtaken by a later change (resolved, then acknowledged)
        by = message.get("acknowledged_by")
        by = by if isinstance(by, int) and not isinstance(by, bool) else None
        after = dataclasses.replace(known, state=state, acknowledged_by=by, acknowledged_at=acknowledged_at,
                                    resolved_at=resolved_at)
        if not self._fits(after) and len(self.views) >= self.limit:
            return None  # leaving a full page: the next row comes from the database
        return self._with(self.seq, after)

    def _with(self, seq: int, view: AlertView, new: bool = False) -> AlertPage:
        views = [v for v in self.views if v.id != view.id]
        if self._fits(view):
            if new:
                views.insert(0, view)
            else:
                views = [view if v.id == view.id else v for v in self.views]
        return dataclasses.replace(self, seq=seq, views=tuple(views[: self.limit]))


# People move an alert on, never back, between two engine events (the engine reopens it, numbered).
_RANK = {AlertState.OPEN: 0, AlertState.ACKNOWLEDGED: 1, AlertState.RESOLVED: 2}


def _stamp(value: Any) -> datetime | None:
    """A published time (ISO 8601, or null); ValueError for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    return datetime.fromisoformat(value)


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

