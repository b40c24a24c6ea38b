"""`POST /api/v1/billing/webhook`: Stripe's events, verified and applied once.

The signature is checked on the raw body, before anything is parsed or stored, with the official
library's `Webhook.construct_event` (HMAC-SHA256 of "timestamp.body" with the endpoint's secret,
compared in constant time) and a tolerance of STRIPE_WEBHOOK_TOLERANCE seconds, so a captured
delivery replayed later is refused. Stripe retries any answer but 2xx, so a refusal is a 400 and
an event applied or already applied is a 200; a database or Stripe failure is a 503 and Stripe
delivers the event again later (it is stored only with its effects). Without STRIPE_WEBHOOK_SECRET
the endpoint answers 404: nothing is accepted unsigned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import stripe
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel, Field

from veles.api.deps import Context, requires
from veles.billing import account
from veles.billing.client import BillingNotConfigured
from veles.billing.engine import follow
from veles.billing.service import apply_event
from veles.services.auth import Identity
from veles.services.permissions import Permission

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])
Payer = Annotated[Identity, Depends(requires(Permission.MANAGE_BILLING))]
T = TypeVar("T")
STRIPE_DOWN: dict[int | str, dict[str, Any]] = {
    404: {"description": "Billing is not configured on this deployment (no STRIPE_SECRET_KEY)."},
    503: {"description": "Stripe could not be reached, or refused the call."}}


async def _stripe(call: Callable[[], T]) -> T:
    """A blocking billing call in a worker thread. A deployment without Stripe answers 404, as the
    webhook does (nothing to reach here, and no server fault); Stripe's own failure is a 503."""
    try:
        return await asyncio.to_thread(call)
    except BillingNotConfigured as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except stripe.StripeError as exc:
        log.warning("Stripe refused a billing call: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"Stripe could not be reached or refused: {exc.user_message or 'try again'}"
                            ) from None


class StandingOut(account.PlanStanding, frozen=True):
    """Where the caller's broker stands with billing; `monthly_cents` is the plan's list price."""

    notice: str = Field(description="What the portal's banner says for this status ('' when paid up).")


class PlanChoice(BaseModel):
    plan: Literal["starter", "professional", "enterprise"]


class Redirect(BaseModel):
    """Where to send the browser: Stripe Checkout or the Billing Portal."""

    url: str


class InvoiceOut(BaseModel):
    id: str
    number: str
    created: datetime
    status: str
    amount_due: int = Field(description="In minor units of `currency`.")
    amount_paid: int = Field(description="In minor units of `currency`.")
    currency: str
    pdf: str | None
    hosted: str | None


@router.get("")
async def billing_standing(ctx: Context, who: Payer) -> StandingOut:
    """The broker's plan, billing status, trial end and current period."""
    found = await asyncio.to_thread(account.standing, ctx.settings.database_url, who.tenant_id)
    return StandingOut(**found.model_dump(include=set(account.PlanStanding.model_fields)),
                       notice=account.billing_notice(found.billing_status))


@router.post("/checkout", responses={**STRIPE_DOWN, 409: {"description": "The plan is below current usage."}})
async def billing_checkout(ctx: Context, who: Payer, choice: PlanChoice) -> Redirect:
    """Pay for a plan: a Stripe Checkout session in subscription mode, or, for a broker that has a
    live subscription, the Billing Portal's plan-change flow (never a second subscription)."""
    url = await _stripe(lambda: account.change_plan_url(ctx.settings, who.tenant_id, who.user_id,
                                                        choice.plan))
    return Redirect(url=url)


@router.post("/portal", responses=STRIPE_DOWN)
async def billing_portal(ctx: Context, who: Payer) -> Redirect:
    """A Stripe Billing Portal session: card, plan changes, cancellation, invoices."""
    return Redirect(url=await _stripe(lambda: account.portal_url(ctx.settings, who.tenant_id, who.user_id)))


@router.get("/invoices", responses=STRIPE_DOWN)
async def billing_invoices(ctx: Context, who: Payer) -> list[InvoiceOut]:
    """The broker's newest invoices (up to 12), newest first, with their PDF links."""
    found = await _stripe(lambda: account.invoices(ctx.settings, who.tenant_id))
    return [InvoiceOut(**{k: getattr(i, k) for k in InvoiceOut.model_fields}) for i in found]


class WebhookAnswer(BaseModel):
    """What became of the event (for Stripe's delivery log)."""

    received: bool
    duplicate: bool
    outcome: str


@router.post("/webhook", responses={
    400: {"description": "The Stripe-Signature is missing, forged or too old, or the body is no event."},
    404: {"description": "Webhooks are not configured on this deployment (no STRIPE_WEBHOOK_SECRET)."},
    503: {"description": "The database or Stripe is unavailable: Stripe delivers the event again later."},
})
async def webhook(request: Request, ctx: Context,
                  stripe_signature: Annotated[str | None, Header()] = None) -> WebhookAnswer:
    """Apply a Stripe event to the tenant it is about. Public: the signature stands for a caller's
    token (only Stripe and whoever holds the endpoint's secret can make one)."""
    settings = ctx.settings
    if settings.stripe_webhook_secret is None or not settings.stripe_webhook_secret.get_secret_value():
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "Billing webhooks are not configured on this deployment (STRIPE_WEBHOOK_SECRET).")
    payload = await request.body()
    if not stripe_signature:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Stripe-Signature header missing.")
    try:
        event = stripe.Webhook.construct_event(payload, stripe_signature,
                                               settings.stripe_webhook_secret.get_secret_value(),
                                               tolerance=settings.stripe_webhook_tolerance)
    except stripe.SignatureVerificationError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Signature refused: {exc.user_message}") from None
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The body is not a Stripe event.") from None
    document: dict[str, Any] = event.to_dict()
    if not {"id", "type", "data"} <= document.keys() or "object" not in (document["data"] or {}):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The body is not a Stripe event.")
    try:
        applied = await asyncio.to_thread(apply_event, settings, document)
    except stripe.StripeError as exc:
        log.warning("Stripe event %s not applied: Stripe refused a read (%s)", document["id"], exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Stripe could not be read; retry.") from None
    await follow(settings, applied)
    return WebhookAnswer(received=True, duplicate=applied.duplicate, outcome=applied.outcome)
