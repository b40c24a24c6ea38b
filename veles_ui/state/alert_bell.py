"""The top bar's alerts: the signed-in user's unread count, "mark all read", and for a new
critical alert a sound and (opted in, with the browser's permission) a desktop notification.

`follow` runs once per tab (started by the app-wide `alert_bell_follower`, so on every page): it
waits on this process's `AlertWatch` and, when the tenant's alerts move or anyone acknowledges or
resolves one (`veles.services.alert_state`), and every `IDLE_S`, reads the user's unread count
and the critical alerts raised since the tab last looked, by sequence number, from the database
in a thread. The sound is a short tone from the Web Audio API (no file to fetch); browsers may
keep it silent until the user has interacted with the page. The desktop notification uses the browser's
Notification API: opting in on /settings/notifications asks the browser's permission, and the
choice is stored per user (`AlertReader.desktop_notifications`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import reflex as rx
from reflex.event import EventSpec
from sqlmodel import Session

from veles.services.alert_reader import (
    CriticalAlert,
    ReaderView,
    critical_since,
    mark_read,
    reader,
    set_desktop_notifications,
)
from veles.services.alert_watch import get_alert_watch
from veles.services.auth import AuthError, Identity
from veles.services.permissions import Permission
from veles_ui.state.errors import shown
from veles_ui.state.session import USER_ERRORS, SessionState, authorized, in_tenant, tab_connected

log = logging.getLogger(__name__)

IDLE_S = 10.0  # a follower with no wake-up re-reads the count this often (acknowledged elsewhere)
REFUSED_TOAST_MS = 10_000  # long enough to read the read-only sentence
ASK_PERMISSION = ("(window.Notification ? Notification.requestPermission() : "
                  "Promise.resolve('unsupported'))")


@dataclass(frozen=True, slots=True)
class _Look:
    view: ReaderView
    critical: list[CriticalAlert]


def _look(after_seq: int | None) -> Any:
    """What the bell shows, and the critical alerts raised after `after_seq` (None: none wanted)."""
    def work(db: Session, who: Identity) -> _Look:
        view = reader(db, who.tenant_id, who.user_id)
        return _Look(view, [] if after_seq is None else critical_since(db, who.tenant_id, after_seq))
    return work


def alarm_script(alerts: list[CriticalAlert], desktop: bool) -> str:
    """The tab's sound, and its desktop notification when opted in and permitted."""
    latest = alerts[-1].message
    title = "Veles: critical alert" if len(alerts) == 1 else f"Veles: {len(alerts)} critical alerts"
    payload = json.dumps({"title": title, "body": latest, "desktop": desktop})
    return f"""(() => {{
  const p = {payload};
  try {{
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) {{
      const ctx = new Ctx(), tone = ctx.createOscillator(), gain = ctx.createGain();
      tone.type = 'square'; tone.frequency.value = 880; gain.gain.value = 0.08;
      tone.connect(gain); gain.connect(ctx.destination);
      tone.start(); tone.stop(ctx.currentTime + 0.35);
      tone.onended = () => ctx.close();
    }}
    window.velesAlertSounds = (window.velesAlertSounds || 0) + 1;
  }} catch (e) {{}}
  if (p.desktop && window.Notification && Notification.permission === 'granted') {{
    new Notification(p.title, {{body: p.body, tag: 'veles-critical'}});
  }}
}})()"""


class AlertBellState(SessionState):
    """The bell in the top bar, the desktop-notification choice, and the tab's follower."""

    unread: rx.Field[int] = rx.field(0)
    desktop: rx.Field[bool] = rx.field(False)
    desktop_notice: rx.Field[str] = rx.field("")
    # Which of this tab's followers is the live one: a remount starts a new one, the older ends.
    bell_follower: rx.Field[int] = rx.field(0)

    def _show(self, view: ReaderView) -> None:
        self.unread, self.desktop = view.unread, view.desktop_notifications

    @rx.event(background=True)
    async def follow(self) -> Any:
        """Keep the count current and sound new critical alerts until the tab goes or a newer
        follower takes over."""
        async with self:
            token, client = self.token, self.router.session.client_token
            self.bell_follower += 1
            mine = self.bell_follower
        try:
            identity = await authorized(token, Permission.VIEW_RISK)
            first: _Look = await asyncio.to_thread(in_tenant, identity, _look(None))
        except Exception:
            return  # signed out before the follower started: the next sign-in mounts a new one
        seen = first.view.seq  # only alerts raised from now on sound
        async with self:
            self._show(first.view)
        async with get_alert_watch().watch(identity.tenant_id, IDLE_S) as changes:
            async for change in changes:
                async with self:
                    if self.bell_follower != mine or self.token != token:
                        return
                if change is None and not tab_connected(client):
                    await asyncio.sleep(IDLE_S)  # a reload reconnects under the same token
                    if not tab_connected(client):
                        return
                try:
                    look: _Look = await asyncio.to_thread(in_tenant, identity, _look(seen))
                except Exception as exc:  # the database away: the next wake-up tries again
                    log.warning("alert bell of tenant %s not read: %s", identity.tenant_id, exc)
                    continue
                async with self:
                    if self.bell_follower != mine:
                        return
                    self._show(look.view)
                    desktop = self.desktop
                if look.critical:
                    seen = max(seen, look.critical[-1].seq)
                    yield rx.call_script(alarm_script(look.critical, desktop))

    @rx.event
    async def refresh(self) -> None:
        """Read the count again (this tab acknowledged or resolved an alert)."""
        try:
            look: _Look = await self.in_tenant(Permission.VIEW_RISK, _look(None))
        except USER_ERRORS:
            return
        self._show(look.view)

    @rx.event
    async def read_all(self) -> EventSpec | None:
        """Mark every alert raised so far as read by this user. It stores something, so it is a
        change: refused while billing holds the tenant read-only, as the API refuses
        `POST /api/v1/me/alerts/read` then, and the refusal's reason shows as a toast (the bell
        has no form to show it under)."""
        try:
            view: ReaderView = await self.in_tenant(
                Permission.VIEW_RISK, lambda db, who: mark_read(db, who.tenant_id, who.user_id), change=True)
        except AuthError:
            return None  # the session ended: the session watch sends the tab to sign in
        except USER_ERRORS as exc:
            return rx.toast.error(shown(exc), id="mark-read-refused", duration=REFUSED_TOAST_MS,
                                  close_button=True)
        self._show(view)
        return None

    @rx.event
    async def choose_desktop(self, enabled: bool) -> EventSpec | None:
        """The opt-in switch: on asks the browser's permission first (its answer is stored by
        `permission_answer`); off is stored at once."""
        if enabled:
            return rx.call_script(ASK_PERMISSION, callback=AlertBellState.permission_answer)
        await self._store_desktop(False)
        self.desktop_notice = ""
        return None

    @rx.event
    async def permission_answer(self, answer: str) -> None:
        """The browser's answer: opted in only when it granted notifications."""
        granted = answer == "granted"
        await self._store_desktop(granted)
        self.desktop_notice = "" if granted else (
            f"Your browser did not allow notifications ({answer}): allow them for this site in its "
            "settings, then switch this on again.")

    async def _store_desktop(self, enabled: bool) -> None:
        try:
            view: ReaderView = await self.in_tenant(
                Permission.VIEW_RISK,
                lambda db, who: set_desktop_notifications(db, who.tenant_id, who.user_id, enabled),
                change=True)
        except Exception as exc:
            self.desktop_notice = shown(exc)
            return
        self._show(view)
