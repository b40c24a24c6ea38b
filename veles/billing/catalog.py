"""The Stripe catalog: one product and one monthly USD price per plan, found by lookup key.

`sync` makes what is missing and leaves what is there, so `veles billing sync` can run on every
deployment and any number of times: prices are found by their lookup key (`veles_<plan>_monthly`),
products by the id Veles gives them (`veles_<plan>`). A price whose amount no longer matches the
plan is replaced by a new one that takes over the lookup key (`transfer_lookup_key`), as Stripe
prices cannot be changed; subscriptions on the old price keep it until they change plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from veles.billing.client import stripe_client, with_retries
from veles.config import Settings
from veles.plans import PLANS

CURRENCY = "usd"


def lookup_key(plan: str) -> str:
    """The lookup key of the plan's monthly price."""
    return f"veles_{plan}_monthly"


def product_id(plan: str) -> str:
    """The id Veles gives the plan's Stripe product."""
    return f"veles_{plan}"


def plan_of_price(price: Any) -> str | None:
    """The plan a Stripe price (or legacy plan) sells, from its lookup key or its metadata; None
    for a price that is none of Veles' plans."""
    if price is None:
        return None
    key = _get(price, "lookup_key")
    for plan in PLANS:
        if key == lookup_key(plan):
            return plan
    metadata = _get(price, "metadata") or {}
    chosen = _get(metadata, "veles_plan")
    return chosen if chosen in PLANS else None


def _get(obj: Any, key: str) -> Any:
    """A field of a Stripe object or of a plain dict (events arrive as either)."""
    try:
        return obj[key]
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class SyncedPlan:
    """One plan's product and price after a sync, and what the sync did for it."""

    plan: str
    product: str
    price: str
    unit_amount: int
    made: tuple[str, ...]  # "product", "price": what was created this time; empty when all was there


def sync(settings: Settings) -> list[SyncedPlan]:
    """Make the catalog match `veles.plans.PLANS` (blocking: network)."""
    client = stripe_client(settings)
    keys = [lookup_key(plan) for plan in PLANS]
    found = with_retries(lambda: client.v1.prices.list(params={"lookup_keys": keys, "active": True,
                                                               "limit": len(keys)}))
    prices = {price.lookup_key: price for price in found.data}
    return [_sync_plan(client, plan, prices.get(lookup_key(plan))) for plan in PLANS]


def _sync_plan(client: stripe.StripeClient, plan: str, price: Any) -> SyncedPlan:
    limits = PLANS[plan]
    amount = limits.monthly_usd * 100  # cents: money in integer minor units
    made: list[str] = []
    product = _product(client, plan, made)
    if price is None or price.unit_amount != amount or price.currency != CURRENCY:
        params: dict[str, Any] = {
            "product": product, "currency": CURRENCY, "unit_amount": amount,
            "recurring": {"interval": "month"}, "lookup_key": lookup_key(plan),
            "transfer_lookup_key": True, "metadata": {"veles_plan": plan},
        }
        price = with_retries(lambda: client.v1.prices.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"veles-price-{plan}-{amount}-{CURRENCY}"}))
        made.append("price")
    return SyncedPlan(plan=plan, product=product, price=price.id, unit_amount=amount, made=tuple(made))


def _product(client: stripe.StripeClient, plan: str, made: list[str]) -> str:
    """The plan's product, made when missing (found by its id)."""
    ident = product_id(plan)
    try:
        return with_retries(lambda: client.v1.products.retrieve(ident)).id
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
    limits = PLANS[plan]
    created = with_retries(lambda: client.v1.products.create(
        params={"id": ident, "name": f"Veles {limits.name}", "metadata": {"veles_plan": plan}},
        options={"idempotency_key": f"veles-product-{plan}"}))
    made.append("product")
    return created.id
