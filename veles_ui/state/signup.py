"""Sign-up: a broker asks for its account, confirms the address from the e-mailed link, and the
tenant's engine starts then (`/verify-email`).

The form is rate limited per IP (`veles.services.ratelimit.shared_signup_limiter`) and answers the
same for a new and a taken address (`veles.services.signup.ANSWER`), the e-mail going out after the
answer shows. Database, Argon2, Redis and SMTP work runs in threads, off the portal's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import reflex as rx

from veles.config import Settings, get_settings
from veles.plans import PLANS
from veles.services.engine import resume_tenant
from veles.services.ratelimit import (
    LimiterUnavailable,
    TooManyAttempts,
    check_attempts,
    shared_signup_limiter,
)
from veles.services.signup import (
    ANSWER,
    SignupError,
    SignupForm,
    SignupMail,
    VerificationLinkInvalid,
    confirm_signup,
    send_signup_mail,
    sign_up,
)
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState

log = logging.getLogger(__name__)


def _limited_sign_up(settings: Settings, form: SignupForm, ip: str | None) -> SignupMail:
    """Count the attempt against this IP's sign-ups, then `sign_up` (blocking: run in a thread)."""
    check_attempts(shared_signup_limiter(settings), ip, None, kind="signup", what="sign-up")
    return sign_up(settings, form, ip=ip)


class SignupState(SessionState):
    """The refusal of the last attempt, by form field, so the message shows next to that field;
    `signup_sent` holds the one answer every accepted form gets."""

    error_field: str = ""
    error: str = ""
    plan: str = "starter"
    signup_sent: str = ""

    @rx.event
    def choose_plan_from_url(self) -> None:
        """Page load: the landing page's plan buttons link here with `?plan=<key>`."""
        chosen = self.router.url.query_parameters.get("plan", "")
        self.plan = chosen if chosen in PLANS else "starter"
        self.error_field = self.error = self.signup_sent = ""

    @rx.event
    def set_plan(self, plan: str) -> None:
        """The plan selector (an unknown value is refused on submit, by field)."""
        self.plan = plan

    @rx.event
    async def sign_up(self, form: dict[str, str]) -> AsyncIterator[None]:
        """Ask for the account: answer at once, then e-mail the confirmation link (or, for an address
        that has an account, a note to it) so the answer is the same for both."""
        settings, submitted = get_settings(), SignupForm.from_form(form)
        try:
            mail = await asyncio.to_thread(_limited_sign_up, settings, submitted, self._client_ip())
        except SignupError as exc:
            self.error_field, self.error = exc.field, str(exc)
            return
        except (TooManyAttempts, LimiterUnavailable) as exc:
            self.error_field = "form"
            self.error = exc.user_message if isinstance(exc, LimiterUnavailable) else str(exc)
            return
        except Exception as exc:  # a server fault: shown under the form, never raised out of the handler
            self.error_field, self.error = "form", shown(exc)
            return
        self.error_field = self.error = ""
        self.signup_sent = ANSWER
        yield
        await asyncio.to_thread(send_signup_mail, settings, mail)


class VerifyEmailState(SessionState):
    """The /verify-email page: following the link activates the tenant and starts its engine."""

    verify_error: str = ""
    verified: bool = False

    @rx.event
    async def confirm(self) -> None:
        """Page load: spend the link's token, then start the tenant's (empty) engine."""
        settings = get_settings()
        token = str(self.router.url.query_parameters.get("token", ""))
        self.verified, self.verify_error = False, ""
        try:
            tenant_id = await asyncio.to_thread(confirm_signup, settings, token, ip=self._client_ip())
        except VerificationLinkInvalid as exc:
            self.verify_error = str(exc)
            return
        self.verified = True
        try:  # starts its engine if it already stores a connection (a new tenant has none: nothing runs)
            await resume_tenant(settings, tenant_id)
        except Exception:  # the tenant is active either way; `veles engine` starts it on its next run
            log.exception("tenant %s confirmed its e-mail but its engine did not start", tenant_id)
