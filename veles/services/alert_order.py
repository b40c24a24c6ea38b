"""A tenant's alerts back in the order the engine numbered them, and the reload that fills a gap.

Why. The engine gives every alert event it stores (raise, repeat, clear) the tenant's next
sequence number, `seq`, gap-free (`actors/alert_store.py`). On the way to a client the order can
break: the Redis topic is latest-wins (a burst can drop a message) and the web tier merges it with
the aggregator's recent list read over Ray. A clear that overtakes its raise would leave an alert
shown open for ever, and a dropped raise would never be delivered.

`AlertSequencer` is what each client of the stream runs: it hands messages on in sequence order,
drops the ones already applied, and holds the ones that came early. A gap still open after
`GAP_WAIT_S`, or `MAX_HELD` messages held, means a message was lost: the client then reloads from
the database (`stored_since`: the rows changed after the last number it applied) and tells the
sequencer how far the reload reached (`resync`). A client starts unsynced, holding everything,
until its first load says where it stands. Messages without a number (an engine without a
database, or an alert the database refused) are handed on as they come.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlmodel import col, select

from actors.alert_store import current_seq, tenant_rules
from actors.wire import Row
from models.alerts import Alert, AlertState
from models.db import tenant_session

GAP_WAIT_S = 2.0  # how long a missing number may be waited for before reloading
MAX_HELD = 1_000  # messages held behind a gap, at most: more, and the client reloads at once
MAX_RELOAD = 1_000  # rows one reload reads; a longer gap is filled by the reloads that follow
_BUILT_IN_KINDS = {rule.id: rule.kind for rule in tenant_rules()}  # a stored row names its rule only


class AlertSequencer:
    """Puts one tenant's alert messages in `seq` order for one client (see the module's doc)."""

    def __init__(
        self, last: int | None = None, gap_wait_s: float = GAP_WAIT_S, max_held: int = MAX_HELD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.last = last  # the last number applied; None until the client's first load
        self._gap_wait_s, self._max_held, self._clock = gap_wait_s, max_held, clock
        self._held: dict[int, Row] = {}
        self._waiting_since: float | None = None  # since when the oldest wait has lasted

    @property
    def held(self) -> int:
        """Messages waiting for a number before them."""
        return len(self._held)

    def offer(self, message: Row) -> list[Row]:
        """The messages that may be applied now, in order, after `message` arrived: none if it
        came early (held) or was applied already, several if it filled a gap."""
        seq = message.get("seq") if isinstance(message, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            return [message]
        if self.last is not None and seq <= self.last:
            return []
        if len(self._held) < self._max_held:  # beyond it the reload that is due covers the rest
            self._held.setdefault(seq, message)
        if self._waiting_since is None:
            self._waiting_since = self._clock()
        return self._release()

    def needs_reload(self) -> bool:
        """Whether a message is missing for good: held ones have waited GAP_WAIT_S, or too many
        are held. (Unsynced, everything is held until the first load.)"""
        if not self._held or self._waiting_since is None:
            return False
        return len(self._held) >= self._max_held or self._clock() - self._waiting_since >= self._gap_wait_s

    def oldest_held(self) -> int | None:
        """The lowest number waiting, if any."""
        return min(self._held) if self._held else None

    def reload_after(self) -> int:
        """The number a reload should start after: the last applied, or (never synced) just
        before the oldest message held."""
        if self.last is not None:
            return self.last
        return min(self._held) - 1 if self._held else 0

    def resync(self, last: int) -> list[Row]:
        """A load reflected every event up to `last`: forget what it covered and hand on, in
        order, what follows it (another gap may remain, and is waited for anew)."""
        self.last = last if self.last is None else max(self.last, last)
        for seq in [s for s in self._held if s <= self.last]:
            del self._held[seq]
        self._waiting_since = self._clock() if self._held else None
        return self._release()

    def _release(self) -> list[Row]:
        ready: list[Row] = []
        if self.last is None:
            return ready
        while self.last + 1 in self._held:
            self.last += 1
            ready.append(self._held.pop(self.last))
        if not self._held:
            self._waiting_since = None
        elif ready:
            self._waiting_since = self._clock()  # a new gap: its own wait starts now
        return ready


def _msc(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def stored_message(row: Alert) -> Row:
    """A stored alert as the message of its latest event (`actors.wire.alert_row`'s shape, as far
    as a row knows it: the kind of a built-in rule's alert, no threshold), marked `reloaded`."""
    raised_at = row.last_raised_at or row.created_at
    resolved = row.state is AlertState.RESOLVED
    rule_id = row.engine_rule or str(row.rule_id or "")
    built_in = _BUILT_IN_KINDS.get(rule_id)
    return {
        "id": row.id, "seq": row.seq, "rule_id": rule_id, "kind": built_in.value if built_in else None,
        "severity": row.severity.value, "subject": row.subject, "value": row.value, "threshold": None,
        "status": "cleared" if resolved else "raised",
        "time_msc": _msc(row.resolved_at or raised_at) if resolved else _msc(raised_at),
        "message": row.message, "repeats": row.repeats,
        "first_msc": row.first_msc or _msc(row.created_at), "reloaded": True,
    }


def reload_messages(row: Alert) -> list[Row]:
    """What a reload hands on for one row changed behind a gap: its latest event, and before a
    clear, the raise it clears. The gap may have swallowed both (an alert raised and cleared
    within it, when Redis was away, say), and a consumer that only saw the clear would never
    deliver the alert; one that had seen the raise takes it again, and is idempotent (delivery
    knows an alert by its key). The raise carries no number: its own was overwritten by the
    clear's."""
    latest = stored_message(row)
    if latest["status"] != "cleared":
        return [latest]
    raised_at = row.last_raised_at or row.created_at
    return [{**latest, "seq": None, "status": "raised", "time_msc": _msc(raised_at)}, latest]


def stored_since(url: str, tenant_id: int, after: int) -> tuple[int, list[Row]]:
    """The reload: each alert whose latest event is numbered after `after`, as that event's
    message, in order, and the number the reload reaches (everything up to it is reflected).
    Blocks on the database: run it in a thread."""
    with tenant_session(url, tenant_id) as db:
        reached = current_seq(db, tenant_id)  # first: rows changed meanwhile only carry higher numbers
        statement = (select(Alert).where(Alert.tenant_id == tenant_id, col(Alert.seq) > after,
                                         col(Alert.seq) <= reached)
                     .order_by(col(Alert.seq)).limit(MAX_RELOAD))
        rows = db.exec(statement).all()
        messages = [message for row in rows for message in reload_messages(row)]
    if len(rows) == MAX_RELOAD:
        reached = int(messages[-1]["seq"])
    return reached, messages
