"""The portal's password reset: /forgot asks for a link by e-mail, /reset?token= sets the password.

Both go through `veles.services.password_reset`, like the REST API, and count against the same
per-IP and per-address limits (the same Redis counters when REDIS_URL is set), so the portal is no
way around them. /forgot shows one answer for every address and sends the e-mail after showing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reflex as rx

from models.db import session_scope
from veles.config import get_settings
from veles.services.password_reset import (
    ANSWER,
    RESET_IP_LIMIT,
    RESET_LIMIT,
    ResetLinkInvalid,
    ResetMail,
    check_link,
    complete_reset,
    request_reset,
    send_reset_mail,
)
from veles_ui.state.errors import shown
from veles_ui.state.limits import refusal
from veles_ui.state.password_link import submit_password
from veles_ui.state.session import SessionState


def _refusal(ip: str | None, email: str | None) -> str:
    return refusal(ip, email, kind="reset", ip_limit=RESET_IP_LIMIT, email_limit=RESET_LIMIT,
                   what="password reset")


def _request(email: str, ip: str | None) -> ResetMail | None:
    settings = get_settings()
    with session_scope(settings.database_url) as db:
        return request_reset(db, settings, email, ip=ip)


def _link_problem(token: str) -> str:
    if not token:
        return "This reset link is not valid (it may be incomplete); ask for a new one."
    try:
        with session_scope(get_settings().database_url) as db:
            check_link(db, token)
    except ResetLinkInvalid as exc:
        return str(exc)
    return ""


def _complete(token: str, password: str, confirm: str, ip: str | None) -> None:
    with session_scope(get_settings().database_url) as db:
        complete_reset(db, token, password, confirm, ip=ip)


class ForgotState(SessionState):
    """The /forgot form: the address typed, and the one answer every address gets."""

    forgot_error: str = ""
    forgot_sent: str = ""

    @rx.event
    def clear_forgot(self) -> None:
        """Page load: a fresh form."""
        self.forgot_error = self.forgot_sent = ""

    @rx.event
    async def request_link(self, form: dict[str, str]) -> AsyncIterator[None]:
        """Answer first, then send the e-mail, so the answer looks and takes the same for every address."""
        email = str(form.get("email", "")).strip().lower()
        if not email:
            self.forgot_error, self.forgot_sent = "Enter the email address you sign in with.", ""
            return
        refused = await asyncio.to_thread(_refusal, self._client_ip(), email)
        if refused:
            self.forgot_error, self.forgot_sent = refused, ""
            return
        try:
            mail = await asyncio.to_thread(_request, email, self._client_ip())
        except Exception as exc:  # a server fault: shown under the form, never raised out of the handler
            self.forgot_error, self.forgot_sent = shown(exc), ""
            return
        self.forgot_error, self.forgot_sent = "", ANSWER
        yield
        if mail is not None:
            await asyncio.to_thread(send_reset_mail, get_settings(), mail)


class ResetState(SessionState):
    """The /reset page: whether its link can be used, field errors, and the outcome."""

    reset_link_error: rx.Field[str] = rx.field("")
    reset_error_field: rx.Field[str] = rx.field("")
    reset_error: rx.Field[str] = rx.field("")
    reset_done: bool = False
    _reset_token: str = ""  # backend only: the link's token stays on the server side of the state

    @rx.event
    async def open_link(self) -> None:
        """Page load: read the token from the URL and say at once if the link cannot be used."""
        self._reset_token = str(self.router.url.query_parameters.get("token", ""))
        self.reset_error_field = self.reset_error = ""
        self.reset_done = False
        self.reset_link_error = await asyncio.to_thread(_link_problem, self._reset_token)

    @rx.event
    async def set_password(self, form: dict[str, str]) -> None:
        """Set the new password (typed twice); a refusal (too short, or guessable: the estimator's
        advice) is shown by field and the link stays usable."""
        ip, token = self._client_ip(), self._reset_token
        password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
        outcome = await submit_password(lambda: _refusal(ip, None),
                                        lambda: _complete(token, password, confirm, ip), ResetLinkInvalid)
        self.reset_error_field, self.reset_error = outcome.error_field, outcome.error
        if outcome.link_error:
            self.reset_link_error = outcome.link_error
        self.reset_done = outcome.done
