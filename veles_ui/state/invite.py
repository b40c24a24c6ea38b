"""The portal's /invite?token= page: the invited person sees where they are invited, chooses a
password and their user is made (`veles.services.invitations`, shared with
`POST /api/v1/invitations/accept`).

Attempts count against the same per-IP counters as the API's accept route (the same Redis keys
when REDIS_URL is set), so the portal is no way around them. Everything blocking (Redis, the
database, zxcvbn, Argon2, SMTP) runs in a thread, never on the event loop, and the note to the
inviting admin is sent after the invitee has their answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reflex as rx

from models.db import session_scope
from veles.config import get_settings
from veles.services.invitations import (
    ACCEPT_IP_LIMIT,
    UNKNOWN_LINK,
    Accepted,
    InvitationInvalid,
    InvitationPreview,
    accept,
    preview,
    send_accepted_mail,
)
from veles_ui.state.limits import refusal
from veles_ui.state.password_link import submit_password
from veles_ui.state.session import SessionState


def _refusal(ip: str | None) -> str:
    return refusal(ip, None, kind="invite", ip_limit=ACCEPT_IP_LIMIT, what="invitation")


def _preview(token: str) -> InvitationPreview | str:
    """What the link invites to, or why it cannot be used."""
    if not token:
        return UNKNOWN_LINK
    try:
        with session_scope(get_settings().database_url) as db:
            return preview(db, token)
    except InvitationInvalid as exc:
        return str(exc)


def _accept(token: str, password: str, confirm: str, ip: str | None) -> Accepted:
    with session_scope(get_settings().database_url) as db:
        return accept(db, token, password, confirm, ip=ip)


class InviteState(SessionState):
    """The /invite page: whether its link can be used, who it invites where, field errors, outcome."""

    invite_link_error: rx.Field[str] = rx.field("")
    invite_email: str = ""
    invite_tenant: str = ""
    invite_role: str = ""
    invite_error_field: rx.Field[str] = rx.field("")
    invite_error: rx.Field[str] = rx.field("")
    invite_done: bool = False
    _invite_token: str = ""  # backend only: the link's token stays on the server side of the state

    @rx.event
    async def open_invite(self) -> None:
        """Page load: read the token from the URL and say at once if the link cannot be used."""
        self._invite_token = str(self.router.url.query_parameters.get("token", ""))
        self.invite_error_field = self.invite_error = ""
        self.invite_done = False
        found = await asyncio.to_thread(_preview, self._invite_token)
        if isinstance(found, str):
            self.invite_link_error = found
            return
        self.invite_link_error = ""
        self.invite_email, self.invite_tenant = found.email, found.tenant
        self.invite_role = found.role.value.replace("_", " ")

    @rx.event
    async def join(self, form: dict[str, str]) -> AsyncIterator[None]:
        """Choose the password (typed twice, kept exactly as typed); a refusal is shown by field and
        the link stays usable. The inviting admin's note goes out after the answer."""
        ip, token = self._client_ip(), self._invite_token
        password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
        outcome = await submit_password(lambda: _refusal(ip), lambda: _accept(token, password, confirm, ip),
                                        InvitationInvalid)
        self.invite_error_field, self.invite_error = outcome.error_field, outcome.error
        if outcome.link_error:
            self.invite_link_error = outcome.link_error
        self.invite_done = outcome.done
        done = outcome.value
        if done is None:
            return
        if done.notice is not None:
            yield
            await asyncio.to_thread(send_accepted_mail, get_settings(), done.notice)
