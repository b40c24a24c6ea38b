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
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel

from veles.api.deps import Context
from veles.billing.engine import follow
from veles.billing.service import apply_event

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


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
