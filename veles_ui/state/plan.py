"""The tenant's plan and its usage against the plan's limits, where it stands with billing, the
way to pay for a plan (Stripe Checkout, or the Billing Portal's plan change for a tenant that has a
subscription) and its invoices. Every Stripe and database call runs in a worker thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import reflex as rx
import stripe
from reflex.event import EventSpec

from veles.billing import account
from veles.billing.client import BillingNotConfigured
from veles.config import get_settings
from veles.services.admin import tenant_usage
from veles.services.live import get_live_feed
from veles.services.permissions import Permission
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState

log = logging.getLogger(__name__)
STRIPE_DOWN = "Stripe cannot be reached right now; nothing was changed. Try again shortly."


def _day(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d}"


def _billing_error(exc: Exception) -> str:
    """What the page says when a billing action fails (Stripe's own text goes to the log)."""
    if isinstance(exc, BillingNotConfigured):
        return "Billing is not set up on this deployment (STRIPE_SECRET_KEY); ask its operator."
    if isinstance(exc, stripe.StripeError):
        log.warning("Stripe refused a plan page call: %s", exc)
        return STRIPE_DOWN
    return shown(exc, (LookupError,))


def _invoice_view(invoice: account.Invoice) -> dict[str, str]:
    paid = invoice.amount_paid if invoice.status == "paid" else invoice.amount_due
    return {"id": invoice.id, "number": invoice.number, "date": _day(invoice.created),
            "status": invoice.status,
            "amount": f"{paid // 100:,}.{paid % 100:02d} {invoice.currency.upper()}",  # integer cents
            "pdf": invoice.pdf or "", "hosted": invoice.hosted or ""}


def _bar(used: int, limit: int | None) -> tuple[str, int]:
    """'used / limit' and the percent used (0 when unlimited)."""
    if limit is None:
        return f"{used:,} / unlimited", 0
    return f"{used:,} / {limit:,}", min(100, round(used * 100 / limit)) if limit else 100


class PlanState(SessionState):
    """What the plan page shows."""

    plan: rx.Field[str] = rx.field("")
    servers: rx.Field[str] = rx.field("")
    servers_pct: rx.Field[int] = rx.field(0)
    accounts: rx.Field[str] = rx.field("")
    accounts_pct: rx.Field[int] = rx.field(0)
    over_limit: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")
    plan_key: rx.Field[str] = rx.field("")
    billing_status: rx.Field[str] = rx.field("")
    subscription_status: rx.Field[str] = rx.field("")
    trial_ends: rx.Field[str] = rx.field("")
    renews: rx.Field[str] = rx.field("")
    subscribed: rx.Field[bool] = rx.field(False)
    invoices: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    invoices_error: rx.Field[str] = rx.field("")
    billing_error: rx.Field[str] = rx.field("")
    opening: rx.Field[str] = rx.field("")  # the plan (or "portal") whose Stripe page is being opened

    @rx.event
    async def load(self) -> None:
        """Page load: accounts as the live book counts them (the engine's view), else as stored
        (read in a thread)."""
        try:
            identity = await self.authorized(Permission.MANAGE_BILLING)
            replica = get_live_feed().replica(identity.tenant_id)
            live = int(replica.totals["accounts"]) if replica.version >= 0 else None
            usage = await asyncio.to_thread(tenant_usage, identity.role, get_settings().database_url,
                                            identity.tenant_id, live)
        except Exception as exc:  # shown on the page, never raised out of the handler
            self.error = shown(exc, (LookupError,))
            return
        self.error = ""
        self.plan = usage.plan
        self.servers, self.servers_pct = _bar(usage.servers, usage.max_servers)
        self.accounts, self.accounts_pct = _bar(usage.accounts, usage.max_accounts)
        self.over_limit = usage.over_limit
        try:
            await self._billing(identity.tenant_id)
        except Exception as exc:
            self.error = shown(exc, (LookupError,))

    async def _billing(self, tenant_id: int) -> None:
        """The billing state as stored, then the invoices from Stripe (a Stripe outage leaves the
        rest of the page as it is and says so where the invoices would be)."""
        settings = get_settings()
        found = await asyncio.to_thread(account.standing, settings.database_url, tenant_id)
        self.plan, self.plan_key = found.plan_name, found.plan
        self.billing_status = found.billing_status
        self.subscription_status = found.subscription_status or ""
        self.trial_ends = _day(found.trial_ends_at) if found.billing_status == "trialing" else ""
        self.renews = _day(found.current_period_end) if found.subscribed else ""
        self.subscribed = found.subscribed
        self.billing_error = self.opening = ""
        try:
            listed = await asyncio.to_thread(account.invoices, settings, tenant_id)
        except Exception as exc:  # shown where the invoices would be
            self.invoices, self.invoices_error = [], _billing_error(exc)
            return
        self.invoices, self.invoices_error = [_invoice_view(i) for i in listed], ""

    @rx.event
    async def choose(self, plan: str) -> AsyncIterator[EventSpec | None]:
        """"Upgrade" / "Change plan": Stripe Checkout (subscription mode) for a tenant without a
        subscription, the Billing Portal's plan change for one that has it; a plan below the usage
        is refused here with the reason."""
        self.opening, self.billing_error = str(plan), ""
        yield None
        try:
            identity = await self.authorized(Permission.MANAGE_BILLING)
            url = await asyncio.to_thread(account.change_plan_url, get_settings(), identity.tenant_id,
                                          identity.user_id, str(plan))
        except Exception as exc:
            self.opening, self.billing_error = "", _billing_error(exc)
            return
        yield rx.redirect(url)

    @rx.event
    async def manage(self) -> AsyncIterator[EventSpec | None]:
        """"Manage billing": the Stripe Billing Portal (card, plan, cancellation, invoices)."""
        self.opening, self.billing_error = "portal", ""
        yield None
        try:
            identity = await self.authorized(Permission.MANAGE_BILLING)
            url = await asyncio.to_thread(account.portal_url, get_settings(), identity.tenant_id,
                                          identity.user_id)
        except Exception as exc:
            self.opening, self.billing_error = "", _billing_error(exc)
            return
        yield rx.redirect(url)
