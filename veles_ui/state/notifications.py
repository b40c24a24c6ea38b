"""The signed-in user's alert-delivery preferences (/settings/notifications): which channels each
severity reaches, quiet hours in their own time zone, and the digest window; and their phone and
SMS sign-in, which change only with the current password (`veles.services.users.change_phone`,
shared with `PUT /api/v1/me/phone`; run in a thread: Argon2 must not stall the event loop).

The rules (SMS only to a verified phone, quiet hours need both ends, a known IANA zone) are
`veles.services.delivery`'s, shared with `PUT /api/v1/me/notifications`; a refusal names its
field and is shown beside it, and nothing is stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from models.alerts import Severity
from models.db import tenant_session
from models.notifications import Channel
from models.tenancy import TwoFactor
from veles.config import get_settings
from veles.services.auth import Identity
from veles.services.delivery import PreferencesView, my_preferences, update_my_preferences
from veles.services.errors import InvalidInput
from veles.services.permissions import Permission
from veles.services.users import UserView, change_phone, my_account
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState, fields

SEVERITIES = [s.value for s in Severity]
CHANNELS = [c.value for c in Channel]
TEXT_FIELDS = ("time_zone", "quiet_start", "quiet_end", "digest_minutes")


def choice(severity: str, channel: str) -> str:
    """The name of one checkbox: a channel chosen for a severity (the form sends "on" if ticked)."""
    return f"{severity}-{channel}"


def _phone_change(identity: Identity, form: dict[str, Any], ip: str | None
                  ) -> tuple[UserView, PreferencesView]:
    """Change the phone (checks the password: Argon2) and read the preferences it affects."""
    with tenant_session(get_settings().database_url, identity.tenant_id) as db:
        view = change_phone(db, identity, form, ip=ip)
        db.flush()
        return view, my_preferences(db, identity)


class NotificationsState(SessionState):
    """The stored preferences as the form shows them, and the outcome of the last save."""

    chosen: rx.Field[list[str]] = rx.field(default_factory=list)  # `choice(...)` names stored as ticked
    time_zone: rx.Field[str] = rx.field("UTC")
    quiet_start: rx.Field[str] = rx.field("")
    quiet_end: rx.Field[str] = rx.field("")
    critical_overrides_quiet: rx.Field[bool] = rx.field(True)
    digest_minutes: rx.Field[str] = rx.field("5")
    sms_phone: rx.Field[str] = rx.field("")
    # Bumped whenever stored values are shown again: the form's inputs are keyed by it, so they
    # are made again with those values (they are uncontrolled, typed into freely until saved).
    revision: rx.Field[int] = rx.field(0)
    phone: rx.Field[str] = rx.field("")
    sms_sign_in: rx.Field[bool] = rx.field(False)
    error_field: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    def _show(self, view: PreferencesView) -> None:
        self.chosen = [choice(s.value, c.value) for s, cs in view.channels.items() for c in cs]
        self.time_zone = view.time_zone
        self.quiet_start, self.quiet_end = view.quiet_start or "", view.quiet_end or ""
        self.critical_overrides_quiet = view.critical_overrides_quiet
        self.digest_minutes = str(view.digest_minutes)
        self.sms_phone = view.sms_phone or ""
        self.revision += 1

    @rx.event
    async def load(self) -> None:
        """Page load: the stored preferences, or the defaults."""
        self.error_field = self.error = self.notice = ""
        try:
            preferences, account = await self.in_tenant(Permission.VIEW_RISK, lambda db, who: (
                my_preferences(db, who), my_account(db, who)))
        except Exception as exc:  # shown above the form, never raised out of the handler
            self.error = shown(exc)
            return
        self._show(preferences)
        self._show_phone(account)

    def _show_phone(self, view: UserView) -> None:
        self.phone, self.sms_sign_in = view.phone or "", view.two_factor == TwoFactor.SMS

    @staticmethod
    def _form(form: dict[str, Any]) -> dict[str, Any]:
        """The form as `PreferencesForm` takes it: a ticked box sends "on", an unticked one
        nothing; empty times mean no quiet hours."""
        typed = {k: str(v).strip() for k, v in fields(form, TEXT_FIELDS).items()}
        return {
            "channels": {s: [c for c in CHANNELS if form.get(choice(s, c))] for s in SEVERITIES},
            "time_zone": typed.get("time_zone", ""),
            "quiet_start": typed.get("quiet_start") or None,
            "quiet_end": typed.get("quiet_end") or None,
            "critical_overrides_quiet": bool(form.get("critical_overrides_quiet")),
            "digest_minutes": typed.get("digest_minutes", ""),
        }

    @rx.event
    async def save(self, form: dict[str, Any]) -> None:
        """Store the form; a refused field is named beside it and nothing is stored."""
        typed = self._form(form)
        try:
            view = await self.in_tenant(Permission.VIEW_RISK,
                                        lambda db, who: update_my_preferences(db, who, typed), change=True)
        except InvalidInput as exc:
            self.error_field, self.error, self.notice = exc.field, exc.reason, ""
            return
        except Exception as exc:
            self.error_field, self.error, self.notice = "", shown(exc), ""
            return
        self._show(view)
        self.error_field = self.error = ""
        self.notice = "Saved: alerts reach you this way within 15 seconds."

    @rx.event
    async def save_phone(self, form: dict[str, Any]) -> None:
        """Set or remove the phone and SMS sign-in; refused without the right current password
        (named beside its field), so a session left open is not enough to move the second factor."""
        data = {
            "phone": str(form.get("phone", "")).strip() or None,
            "sms_sign_in": bool(form.get("sms_sign_in")),
            "current_password": str(form.get("current_password", "")),
        }
        try:
            identity = await self.changing(Permission.VIEW_RISK)
            view, preferences = await asyncio.to_thread(_phone_change, identity, data, self._client_ip())
        except InvalidInput as exc:
            self.error_field, self.error, self.notice = exc.field, exc.reason, ""
            return
        except Exception as exc:  # shown under the form, never raised out of the handler
            self.error_field, self.error, self.notice = "", shown(exc), ""
            return
        self._show(preferences)
        self._show_phone(view)
        self.error_field = self.error = ""
        self.notice = ("Phone saved; SMS codes at sign-in are " + ("on." if view.two_factor == TwoFactor.SMS
                                                                   else "off."))
