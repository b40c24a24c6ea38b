"""A tenant's own billing, as its plan page and the API show it: where it stands, the way to pay
for a plan (Stripe Checkout), the way to manage the card and the subscription (the Billing Portal)
and its invoices with their PDFs.

- **One subscription per tenant.** A tenant without a live subscription (none yet, or one that
  ended) buys a plan through Checkout in subscription mode; one that has a live subscription
  changes plan in the Billing Portal's `subscription_update` flow, because a second Checkout would
  sell it a second subscription and bill both.
- **A plan below the current usage is refused with the reason** (`check_usage` on the stored
  servers and accounts), before Stripe is asked anything.
- **The customer is made once.** A tenant with no Stripe customer gets one, with an idempotency
  key per tenant, and its id is stored, so the webhook finds the tenant by it.

Everything here is blocking (database, Stripe): the web tier runs it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, select

from models.accounts import ClientAccount
from models.billing import BillingStatus
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Tenant, User
from veles.billing.catalog import lookup_key
from veles.billing.client import stripe_client, with_retries
from veles.config import Settings
from veles.plans import PLANS, PlanLimitExceeded, check_usage
from veles.services.errors import Conflict, InvalidInput, NotFound

# a subscription Stripe still bills (a plan change goes through it, not a second one)
LIVE = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete"})
INVOICES = 12  # the newest invoices the plan page lists (a year of monthly invoices)


class PlanStanding(BaseModel, frozen=True):
    """Where a tenant stands with billing, as the plan page and the API show it. The API's
    `StandingOut` and the stored `Standing` both derive from it, so their fields cannot drift."""

    plan: str
    plan_name: str
    monthly_cents: int
    billing_status: str
    subscription_status: str | None
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    plan_chosen: str | None
    subscribed: bool  # a live subscription: changing plan goes through the Billing Portal


class Standing(PlanStanding, frozen=True):
    """`PlanStanding` read from the tenant's stored subscription state, and whether it has a
    Stripe customer yet (the way to pay is made on first use)."""

    has_customer: bool


@dataclass(frozen=True, slots=True)
class Invoice:
    """One Stripe invoice as the plan page lists it; money in integer minor units."""

    id: str
    number: str
    created: datetime
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    pdf: str | None
    hosted: str | None


def _tenant(session: Session, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.is_platform:
        raise NotFound(f"no broker {tenant_id}")
    return tenant


def standing(database_url: str, tenant_id: int) -> Standing:
    """The tenant's plan and billing state as stored."""
    with session_scope(database_url) as session:
        tenant = _tenant(session, tenant_id)
        limits = PLANS[tenant.plan.value]
        chosen = tenant.plan_chosen
        return Standing(
            plan=tenant.plan.value, plan_name=limits.name, monthly_cents=limits.monthly_usd * 100,
            billing_status=tenant.billing_status.value, subscription_status=tenant.subscription_status,
            trial_ends_at=tenant.trial_ends_at, current_period_end=tenant.current_period_end,
            plan_chosen=None if chosen is None else chosen.value,
            subscribed=tenant.stripe_subscription_id is not None and tenant.subscription_status in LIVE,
            has_customer=tenant.stripe_customer_id is not None)


def stored_usage(session: Session, tenant_id: int) -> tuple[int, int]:
    """(servers, accounts) the tenant has stored."""
    servers = len(session.exec(select(Mt5Connection.id).where(Mt5Connection.tenant_id == tenant_id)).all())
    accounts = len(session.exec(select(ClientAccount.id).where(ClientAccount.tenant_id == tenant_id)).all())
    return servers, accounts


def _customer(settings: Settings, tenant_id: int, email: str) -> str:
    """The tenant's Stripe customer, made (once: idempotency key per tenant) and stored if missing."""
    with session_scope(settings.database_url) as session:
        tenant = _tenant(session, tenant_id)
        if tenant.stripe_customer_id:
            return tenant.stripe_customer_id
        name = tenant.name
    client = stripe_client(settings)
    made = with_retries(lambda: client.v1.customers.create(
        params={"email": email, "name": name, "metadata": {"tenant_id": str(tenant_id)}},
        options={"idempotency_key": f"veles-customer-{tenant_id}"}))
    with session_scope(settings.database_url) as session:
        tenant = _tenant(session, tenant_id)
        if tenant.stripe_customer_id:  # another tab made it meanwhile: the idempotency key gave the same
            return tenant.stripe_customer_id
        tenant.stripe_customer_id = made.id
    return str(made.id)


def _price(settings: Settings, plan: str) -> str:
    """The id of the plan's monthly price (found by its lookup key; `veles billing sync` makes it)."""
    client = stripe_client(settings)
    found = with_retries(lambda: client.v1.prices.list(params={"lookup_keys": [lookup_key(plan)],
                                                               "active": True, "limit": 1}))
    if not found.data:
        raise Conflict(f"the {PLANS[plan].name} plan is not on sale yet: run `veles billing sync`")
    return str(found.data[0].id)


def _payer_email(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return "" if user is None else user.email


def change_plan_url(settings: Settings, tenant_id: int, user_id: int, plan: str) -> str:
    """Where the tenant's admin goes to pay for `plan`: a Checkout session (subscription mode) for
    a tenant without a live subscription, else the Billing Portal's plan-change flow. InvalidInput
    for an unknown plan; Conflict, with the reason, for a plan the current usage does not fit."""
    if plan not in PLANS:
        raise InvalidInput("plan", f"no such plan: {plan!r}; choose one of {', '.join(PLANS)}")
    with session_scope(settings.database_url) as session:
        tenant = _tenant(session, tenant_id)
        servers, accounts = stored_usage(session, tenant_id)
        subscription = tenant.stripe_subscription_id if tenant.subscription_status in LIVE else None
        email = _payer_email(session, user_id)
    try:
        check_usage(plan, servers, accounts)
    except PlanLimitExceeded as exc:
        raise Conflict(f"{PLANS[plan].name} is below your current usage: {exc}; remove servers or "
                       "accounts first") from None
    customer = _customer(settings, tenant_id, email)
    back = f"{settings.portal_url}/plan"
    client = stripe_client(settings)
    if subscription is not None:
        portal = with_retries(lambda: client.v1.billing_portal.sessions.create(params={
            "customer": customer, "return_url": back,
            "flow_data": {"type": "subscription_update",
                          "subscription_update": {"subscription": subscription},
                          "after_completion": {"type": "redirect", "redirect": {"return_url": back}}}}))
        return str(portal.url)
    price = _price(settings, plan)
    params: dict[str, Any] = {
        "mode": "subscription", "customer": customer, "client_reference_id": str(tenant_id),
        "line_items": [{"price": price, "quantity": 1}],
        "subscription_data": {"metadata": {"tenant_id": str(tenant_id), "veles_plan": plan}},
        "metadata": {"tenant_id": str(tenant_id), "veles_plan": plan},
        "success_url": f"{back}?checkout=done", "cancel_url": f"{back}?checkout=cancelled",
    }
    session_made = with_retries(lambda: client.v1.checkout.sessions.create(params=params))  # type: ignore[arg-type]
    return str(session_made.url)


def portal_url(settings: Settings, tenant_id: int, user_id: int) -> str:
    """A Billing Portal session for the tenant's customer (card, plan, cancellation, invoices)."""
    with session_scope(settings.database_url) as session:
        email = _payer_email(session, user_id)
    customer = _customer(settings, tenant_id, email)
    client = stripe_client(settings)
    portal = with_retries(lambda: client.v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": f"{settings.portal_url}/plan"}))
    return str(portal.url)


def invoices(settings: Settings, tenant_id: int, limit: int = INVOICES) -> list[Invoice]:
    """The tenant's newest invoices, newest first (none without a Stripe customer)."""
    with session_scope(settings.database_url) as session:
        customer = _tenant(session, tenant_id).stripe_customer_id
    if customer is None:
        return []
    client = stripe_client(settings)
    found = with_retries(lambda: client.v1.invoices.list(params={"customer": customer, "limit": limit}))
    listed = [_invoice(item.to_dict()) for item in found.data]
    return sorted(listed, key=lambda invoice: invoice.created, reverse=True)[:limit]


def _invoice(data: dict[str, Any]) -> Invoice:
    return Invoice(
        id=str(data["id"]), number=str(data.get("number") or data["id"]),
        created=datetime.fromtimestamp(int(data.get("created") or 0), UTC),
        status=str(data.get("status") or ""), amount_due=int(data.get("amount_due") or 0),
        amount_paid=int(data.get("amount_paid") or 0), currency=str(data.get("currency") or "usd"),
        pdf=data.get("invoice_pdf"), hosted=data.get("hosted_invoice_url"))


def billing_notice(status: str) -> str:
    """What a tenant in this billing status is told on every page, and what to do ('' when paid up)."""
    return NOTICES.get(status, "")


NOTICES = {
    BillingStatus.PAST_DUE.value: (
        "Your subscription is past due: a payment failed. Everything works for now; pay the open "
        "invoice (Manage billing on the Plan page) before the grace period ends, or the portal turns "
        "read-only."),
    BillingStatus.READ_ONLY.value: (
        "Your subscription is past due, so your portal is read-only: live figures stay, changes are "
        "refused until payment. Pay the open invoice (Manage billing on the Plan page)."),
    BillingStatus.SUSPENDED.value: (
        "Your account is suspended for non-payment: the engine is stopped and your data is kept. Pay "
        "the open invoice to reactivate it."),
}
