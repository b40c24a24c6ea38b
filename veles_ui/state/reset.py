"""The portal's password reset: /forgot asks for a link by e-mail, /reset?token= sets the password.

Both go through `veles.services.password_reset`, like the REST API, and count against the same
per-IP and per-address limits (the same Redis counters when REDIS_URL is set), so the portal is no
way around them. /forgot shows one answer for every address and sends the e-mail after showing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import cache

import reflex as rx

from models.db import session_scope
from veles.config import get_settings
from veles.services.errors import InvalidInput
from veles.services.password_reset import (
    ANSWER,
    RESET_IP_LIMIT,
    RESET_LIMIT,
    ResetLinkInvalid,
    check_link,
    complete_reset,
    request_reset,
    send_reset_mail,
)
from veles.services.ratelimit import LimiterUnavailable, RateLimiter, limit_key, login_limiter
from veles_ui.state.session import SessionState


@cache
def _limiter() -> RateLimiter:
    """One limiter for the portal process (created on first use, after the settings are read)."""
    return login_limiter(get_settings())


def _refusal(ip: str | None, email: str | None) -> str:
    """Why this attempt may not go ahead (too many, or the counters are down), or "" if it may."""
    checks = [(limit_key("reset-ip", ip or "unknown"), RESET_IP_LIMIT)]
    if email:
        checks.append((limit_key("reset-email", email), RESET_LIMIT))
    try:
        decisions = [_limiter().hit(key, limit) for key, limit in checks]
    except LimiterUnavailable:
        return "Password reset is unavailable for a moment; try again shortly."
    refused = [d.retry_after for d in decisions if not d.allowed]
    return f"Too many password reset attempts; try again in {max(refused)} s." if refused else ""


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
        refused = _refusal(self._client_ip(), email)
        if refused:
            self.forgot_error, self.forgot_sent = refused, ""
            return
        settings = get_settings()
        with session_scope(settings.database_url) as db:
            mail = request_reset(db, settings, email, ip=self._client_ip())
        self.forgot_error, self.forgot_sent = "", ANSWER
        yield
        if mail is not None:
            await asyncio.to_thread(send_reset_mail, settings, mail)


class ResetState(SessionState):
    """The /reset page: whether its link can be used, field errors, and the outcome."""

    reset_link_error: str = ""
    reset_error_field: str = ""
    reset_error: str = ""
    reset_done: bool = False
    _reset_token: str = ""  # backend only: the link's token stays on the server side of the state

    @rx.event
    def open_link(self) -> None:
        """Page load: read the token from the URL and say at once if the link cannot be used."""
        self._reset_token = str(self.router.url.query_parameters.get("token", ""))
        self.reset_error_field = self.reset_error = ""
        self.reset_done = False
        self.reset_link_error = self._link_problem()

    def _link_problem(self) -> str:
        if not self._reset_token:
            return "This reset link is not valid (it may be incomplete); ask for a new one."
        try:
            with session_scope(get_settings().database_url) as db:
                check_link(db, self._reset_token)
        except ResetLinkInvalid as exc:
            return str(exc)
        return ""

    @rx.event
    def set_password(self, form: dict[str, str]) -> None:
        """Set the new password (typed twice); a refusal is shown by field and the link stays usable."""
        refused = _refusal(self._client_ip(), None)
        if refused:
            self.reset_error_field, self.reset_error = "password", refused
            return
        try:
            with session_scope(get_settings().database_url) as db:
                complete_reset(db, self._reset_token, str(form.get("password", "")),
                               str(form.get("confirm", "")), ip=self._client_ip())
        except InvalidInput as exc:
            self.reset_error_field, self.reset_error = exc.field, exc.reason
            return
        except ResetLinkInvalid as exc:
            self.reset_link_error = str(exc)
            return
        self.reset_error_field = self.reset_error = ""
        self.reset_done = True
