"""What the portal's live pages share: one background stream per tab that follows the tenant's
book for as long as the tab shows the page it serves, so a tab that wandered through the portal
runs no streams for screens it no longer shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from veles.services.live import TenantReplica, get_live_feed
from veles_ui.state.session import SessionState, tab_connected

# Seconds a tab may be without a socket before its streams stop (a reload takes less).
DISCONNECT_GRACE = 5.0
# Seconds between looks, while a stream starts, at whether the page's guard has run.
GUARD_POLL = 0.05


def book_stamp(replica: TenantReplica) -> str:
    """'<gateway ms> <published ms>' of the book update a page shows: it changes with every update,
    which is what the page's age (`veles_ui.components.freshness`) counts from."""
    return f"{replica.sent_at * 1000:.0f} {replica.published_at * 1000:.0f}"


class Absence:
    """How long a tab has been without a socket. A reload reconnects the tab under the same token
    while the old socket's disconnect is still being handled: only a tab gone for a while is gone."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._since: float | None = None

    def too_long(self) -> bool:
        """Whether the tab has now been without a socket for more than DISCONNECT_GRACE."""
        if tab_connected(self._token):
            self._since = None
            return False
        now = time.monotonic()
        if self._since is None:
            self._since = now
        return now - self._since > DISCONNECT_GRACE


@dataclass(frozen=True)
class StreamUpdate:
    """A book update for one stream of one tab: the stream's number and the tenant it follows,
    which the tab's state must still hold for the update to be shown (`PortalStream._still_current`)."""

    replica: TenantReplica
    stream: int
    tenant_id: int


class PortalStream(SessionState):
    """What the portal's live pages share: one stream per tab, for as long as the tab shows them."""

    # Which of this tab's streams is the live one: each page load takes the next number and an
    # older stream ends at its next update. A "running" flag instead lost races: Reflex cancels a
    # superseded on_load chain (a new tab hydrates twice), and the cancelled stream's cleanup could
    # land after the new load had already seen the flag set and left, leaving the page with none.
    stream_id: int = 0

    def _shows(self, path: str) -> bool:
        """Whether the tab still shows the page this stream serves (`path`)."""
        raise NotImplementedError

    def _current(self, mine: int) -> bool:
        """Whether stream number `mine` is still the tab's newest and the tab still shows its page."""
        return self.stream_id == mine and self._shows(self.router.url.path.rstrip("/"))

    async def _signed_in_tenant(self, mine: int, absence: Absence) -> int:
        """The tenant the page guard found in the sign-in cookie, once the guard has run; 0 if it
        found none (it sends the tab to sign in) or the stream stopped being current meanwhile.

        Reflex starts a background event at once, ahead of the sequential on_load events queued
        before it, so a stream can start before `require_login` has read the token. A tab signed in
        through its own form already holds the tenant then; a new tab with only the cookies (a
        bookmark, a second tab, `veles bench ui`) does not, and the stream used to end at once,
        leaving the page at dashes. Reflex sets `is_hydrated` after the page's last on_load event.
        """
        while True:
            async with self:
                if not self._current(mine):
                    return 0
                if self.is_hydrated:
                    return self.tenant_id
            if absence.too_long():
                return 0
            await asyncio.sleep(GUARD_POLL)

    def _next_stream(self) -> int:
        """Take the next stream number (under `async with self`): the one a new stream runs as."""
        self.stream_id += 1
        return self.stream_id

    def _still_current(self, update: StreamUpdate) -> bool:
        """Whether `update`'s stream is still the tab's newest on its page, for the same tenant (a
        tenant gone from the state: the session ended, `SessionWatch`). Read under `async with
        self`, in the same hold that shows the update."""
        return self._current(update.stream) and self.tenant_id == update.tenant_id

    async def _updates(self) -> AsyncIterator[StreamUpdate]:
        """The tenant's book each time it changes, while the tab is connected. The caller checks
        `_still_current` in the same `async with self` that shows the update: with Redis as
        Reflex's state manager each hold is a lock, a read and a write of the tab's state in
        Redis, and a separate hold just for that check doubled the round trips per update."""
        async with self:
            mine, absence = self._next_stream(), Absence(self.router.session.client_token)
        tenant_id = await self._signed_in_tenant(mine, absence)
        if not tenant_id:
            return
        async for replica in get_live_feed().watch(tenant_id):
            if absence.too_long():
                break
            yield StreamUpdate(replica, mine, tenant_id)

    async def _follow(self) -> AsyncIterator[TenantReplica]:
        """The tenant's book each time it changes, while the tab is connected, on this page, and
        this is the tab's newest stream (a reload or a second on_load takes over from an older one).
        For pages that read more before showing; a page that only shows the update uses `_updates`.
        """
        async for update in self._updates():
            async with self:
                current = self._still_current(update)
            if not current:
                break
            yield update.replica
