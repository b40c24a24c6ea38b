"""The Stripe client: one configured `stripe.StripeClient` per call site, and retries.

Every call goes over the network, so callers on an event loop hand it to a thread. Stripe's own
retry loop is switched off (`max_network_retries=0`) and tenacity retries connection errors and
rate limits instead, three attempts at most, so how long a call may take is bounded and visible
here. Writes carry an idempotency key, so a retried create never makes two objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from veles.config import Settings

T = TypeVar("T")

RETRIED = (stripe.APIConnectionError, stripe.RateLimitError)


class BillingNotConfigured(RuntimeError):
    """STRIPE_SECRET_KEY is not set: nothing can be sold or changed through Stripe."""


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """A client for the configured account and API base (tests point it at a local fake)."""
    if settings.stripe_secret_key is None or not settings.stripe_secret_key.get_secret_value():
        raise BillingNotConfigured("billing is not configured: set STRIPE_SECRET_KEY")
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        max_network_retries=0,
        http_client=stripe.new_default_http_client(timeout=settings.stripe_timeout),
    )


def with_retries(call: Callable[[], T], attempts: int = 3) -> T:
    """Run `call`, retrying a lost connection or a rate limit with exponential waits; the last
    error is raised after `attempts`."""
    for attempt in Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.2, max=2),
                            retry=retry_if_exception_type(RETRIED), reraise=True):
        with attempt:
            return call()
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
