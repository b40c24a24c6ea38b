"""The billing banner every signed-in page shows while the tenant is past due, read-only or
suspended: what happened and what to do. Read on every page load (one row, in a thread), so a
payment or a dunning step shows on the next page opened."""

from __future__ import annotations

import asyncio
import logging

import reflex as rx

from veles.billing.account import billing_notice
from veles.billing.readonly import billing_status
from veles.config import get_settings
from veles.services.auth import AuthError
from veles_ui.state.session import SessionState, signed_in

log = logging.getLogger(__name__)


class BillingBanner(SessionState):
    """What the banner says ('' hides it) and the billing status it is about."""

    billing_notice: rx.Field[str] = rx.field("")
    billing_state: rx.Field[str] = rx.field("")

    @rx.event
    async def check(self) -> None:
        """Page load (after the sign-in guard): the tenant's billing status from the database. The
        tenant comes from the signed token, never from state the browser could send."""
        try:
            identity = await signed_in(self.token)
            status = await asyncio.to_thread(billing_status, get_settings().database_url, identity.tenant_id)
        except AuthError:
            self.billing_notice = self.billing_state = ""
            return
        except Exception as exc:  # the page works without its banner; the cause is logged
            log.warning("billing banner: status not read (%s)", exc)
            return
        self.billing_state = "" if status is None else status.value
        self.billing_notice = billing_notice(self.billing_state)
