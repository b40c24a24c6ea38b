"""What the portal's live pages share: one background stream per tab that follows the tenant's
book for as long as the tab shows the page it serves, so a tab that wandered through the portal
runs no streams for screens it no longer shows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from veles.services.live import TenantReplica, get_live_feed
from veles_ui.state.session import SessionState, tab_connected

# Seconds a tab may be without a socket before its streams stop (a reload takes less).
DISCONNECT_GRACE = 5.0


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

    async def _follow(self) -> AsyncIterator[TenantReplica]:
        """The tenant's book each time it changes, while the tab is connected, on this page, and
        this is the tab's newest stream (a reload or a second on_load takes over from an older one).
        """
        async with self:
            if not self.tenant_id:
                return
            self.stream_id += 1
            mine, tenant_id, token = self.stream_id, self.tenant_id, self.router.session.client_token
        gone_since: float | None = None
        async for replica in get_live_feed().watch(tenant_id):
            async with self:
                current = self.stream_id == mine and self._shows(self.router.url.path.rstrip("/"))
            if not current:
                break
            # A reload reconnects the tab under the same token while the old socket's
            # disconnect is still being handled: only a tab gone for a while is gone.
            if tab_connected(token):
                gone_since = None
            elif gone_since is None:
                gone_since = time.monotonic()
            elif time.monotonic() - gone_since > DISCONNECT_GRACE:
                break
            yield replica
