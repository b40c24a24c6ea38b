"""Sign-up: a broker opens its account, becomes its tenant_admin and lands on the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import reflex as rx
from reflex.event import EventSpec

from veles.config import get_settings
from veles.plans import PLANS
from veles.services.engine import resume_tenant
from veles.services.signup import SignupError, SignupForm, sign_up
from veles_ui.state.session import SessionState

log = logging.getLogger(__name__)


class SignupState(SessionState):
    """The refusal of the last attempt, by form field, so the message shows next to that field."""

    error_field: str = ""
    error: str = ""
    plan: str = "starter"

    @rx.event
    def choose_plan_from_url(self) -> None:
        """Page load: the landing page's plan buttons link here with `?plan=<key>`."""
        chosen = self.router.url.query_parameters.get("plan", "")
        self.plan = chosen if chosen in PLANS else "starter"
        self.error_field = self.error = ""

    @rx.event
    def set_plan(self, plan: str) -> None:
        """The plan selector (an unknown value is refused on submit, by field)."""
        self.plan = plan

    @rx.event
    async def sign_up(self, form: dict[str, str]) -> AsyncIterator[EventSpec | None]:
        """Create the tenant and its admin, start the tenant's (empty) engine, sign the admin in."""
        settings, submitted = get_settings(), SignupForm.from_form(form)
        try:
            identity = sign_up(settings.database_url, submitted)
        except SignupError as exc:
            self.error_field, self.error = exc.field, str(exc)
            return
        self.error_field = self.error = ""
        try:  # the engine runs one supervisor per active tenant: start this one's (no feeds yet)
            await resume_tenant(settings, identity.tenant_id)
        except Exception:  # the tenant exists either way; `veles engine` starts it on its next run
            log.exception("tenant %s signed up but its engine did not start", identity.tenant_id)
        yield self.sign_in_with(submitted.email, submitted.password)
