"""Every signed-in tab watches its own session, so a tab left open cannot outlive it.

The page guard (`SessionState.require_login`) checks the token when a page loads, and every event
handler checks it again (`SessionState.authorize`), but a tab that only receives live updates
sends no events. So each protected page also starts `SessionWatch.watch`, which waits on
`veles.services.session_watch.until_ended` (the mechanism the integrations socket uses): when the
user is deactivated, changes role or password, signs out, replays a refresh token or their broker
is suspended, the tab forgets its token, leaves its tenant's push rooms (`tenant_push`), its
streams stop at their next update, and it is sent to /login with the reason, within 2 s and
usually at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reflex as rx
from reflex.event import EventSpec

from veles.config import get_settings
from veles.services.auth import AuthError, decode_token
from veles.services.session_watch import until_ended
from veles.services.signing_keys import keyring
from veles_ui.state.session import SessionState
from veles_ui.state.stream import GUARD_POLL, Absence
from veles_ui.state.tenant_push import leave_all

# Seconds between looks at whether the tab is still connected (in memory), and how many of those
# between looks at whether a newer page load took over (that reads the tab's state).
TAB_POLL = 2.0
STATE_EVERY = 8


class SessionWatch(SessionState):
    """The watch on this tab's session: one per tab, the newest page load's."""

    _watch_id: int = 0  # each page load's watch takes the next number; an older one leaves

    async def _guarded_token(self, mine: int, absence: Absence) -> str:
        """The token the page guard accepted, once it has run ('' if none, or superseded): a
        background event can start before the page's sequential on_load events."""
        while True:
            async with self:
                if self._watch_id != mine:
                    return ""
                if self.is_hydrated:
                    return self.token if self.tenant_id else ""
            if absence.too_long():
                return ""
            await asyncio.sleep(GUARD_POLL)

    @rx.event(background=True)
    async def watch(self) -> AsyncIterator[EventSpec]:
        """Send the tab to /login as soon as its session ends; return when the tab goes away or a
        newer page load watches instead."""
        async with self:
            self._watch_id += 1
            mine, absence = self._watch_id, Absence(self.router.session.client_token)
        token = await self._guarded_token(mine, absence)
        if not token:
            return
        settings = get_settings()
        try:
            identity = decode_token(token, keyring(settings))
        except AuthError:
            return  # the guard sends the tab to sign in
        ended = asyncio.create_task(until_ended(settings, identity))
        try:
            polls = 0
            while not ended.done():
                await asyncio.wait({ended}, timeout=TAB_POLL)
                if ended.done():
                    break
                if absence.too_long():
                    return
                polls += 1
                if polls % STATE_EVERY == 0:
                    async with self:
                        if self._watch_id != mine or self.token != token:
                            return
        finally:
            if not ended.done():
                ended.cancel()
        reason = ended.result()
        async with self:
            if self._watch_id != mine or self.token != token:
                return  # signed in again, or a newer watch took over
            self.token, self.tenant_id, self.role, self.email = "", 0, "", ""
            self.login_error = reason
            sid = self.router.session.session_id
        await leave_all(sid)  # the tenant's pushes stop here, before the tab is sent away
        yield rx.redirect("/login")
