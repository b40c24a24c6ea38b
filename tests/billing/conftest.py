"""Billing tests: the real PostgreSQL, the official stripe client against localstripe with the
project's fake of Prices, Checkout and the Billing Portal in front of it, webhooks signed with a
test secret."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from models.billing import BillingStatus
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, User
from tests.stubs.stripe_fake import StripeFake
from veles.api import create_api
from veles.billing.catalog import sync
from veles.billing.client import stripe_client
from veles.config import Settings
from veles.services.auth import Identity, hash_password, issue_token

WEBHOOK_SECRET = "whsec_test_billing_secret"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def stripe_fake() -> Iterator[StripeFake]:
    """localstripe and the fake in front of it, on free local ports, for one module."""
    fake = StripeFake().start()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def billing_settings(database: str, stripe_fake: StripeFake, redis_url_module: str) -> Settings:
    """Settings on the migrated test database and the Stripe fake (limits high enough for a storm)."""
    return Settings(_env_file=None, database_url=database, redis_url=redis_url_module, ray_address=None,
                    stripe_secret_key=SecretStr("sk_test_veles"), stripe_api_base=stripe_fake.base,
                    stripe_webhook_secret=SecretStr(WEBHOOK_SECRET), api_ip_limit=100_000)


@pytest.fixture(scope="module")
def prices(billing_settings: Settings) -> dict[str, str]:
    """The catalog, synced once per module: plan -> price id."""
    return {synced.plan: synced.price for synced in sync(billing_settings)}


@pytest.fixture(scope="module")
def client(billing_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(billing_settings)) as test_client:
        yield test_client


@dataclass
class Broker:
    """A tenant with an administrator and a Stripe customer in localstripe."""

    tenant_id: int
    customer: str
    email: str


def make_broker(settings: Settings, *, plan: Plan = Plan.STARTER,
                billing: BillingStatus = BillingStatus.ACTIVE) -> Broker:
    name = f"Billing Broker {next(_names)} {time.time_ns()}"
    email = f"admin-{time.time_ns()}@billing.test"
    with session_scope(settings.database_url) as session:
        tenant = Tenant(name=name, plan=plan, billing_status=billing)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        session.add(User(tenant_id=tenant.id, email=email, password_hash=hash_password("x" * 12),
                         role=Role.TENANT_ADMIN))
        tenant_id = tenant.id
    customer = stripe_client(settings).v1.customers.create(
        params={"email": email, "metadata": {"tenant_id": str(tenant_id)}})
    with session_scope(settings.database_url) as session:
        row = session.get(Tenant, tenant_id)
        assert row is not None
        row.stripe_customer_id = customer.id
    return Broker(tenant_id, customer.id, email)


def tenant(settings: Settings, tenant_id: int) -> Tenant:
    with session_scope(settings.database_url) as session:
        row = session.get(Tenant, tenant_id)
        assert row is not None
        session.expunge(row)
        return row


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header as Stripe makes it: HMAC-SHA256 of "t.body" (docs.stripe.com/webhooks)."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


_event_ids = itertools.count(1)


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_test_{time.time_ns()}_{next(_event_ids)}", "object": "event",
            "type": kind, "created": created, "livemode": False, "api_version": "2026-10-28.endive",
            "data": {"object": obj}}


def subscription(broker: Broker, sub_id: str, status: str, price: str, plan: str) -> dict[str, Any]:
    """A subscription in Stripe's shape (the fields Veles reads and a few around them)."""
    return {"id": sub_id, "object": "subscription", "customer": broker.customer, "status": status,
            "metadata": {"tenant_id": str(broker.tenant_id)}, "cancel_at_period_end": False,
            "items": {"object": "list", "data": [{
                "id": f"si_{sub_id}", "object": "subscription_item", "quantity": 1,
                "current_period_end": int(time.time()) + 30 * 86400,
                "price": {"id": price, "object": "price", "lookup_key": f"veles_{plan}_monthly",
                          "metadata": {"veles_plan": plan}, "unit_amount": 0, "currency": "usd"}}]}}


def deliver(client: TestClient, document: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
            at: int | None = None) -> Any:
    payload = json.dumps(document).encode()
    return client.post("/api/v1/billing/webhook", content=payload,
                       headers={"Stripe-Signature": sign(payload, secret, at),
                                "Content-Type": "application/json"})


def bearer(settings: Settings, tenant_id: int, email: str, role: Role = Role.TENANT_ADMIN) -> dict[str, str]:
    """An Authorization header for the user with this e-mail, in `role`."""
    with session_scope(settings.database_url) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        identity = Identity(user_id=user.id or 0, tenant_id=tenant_id, role=role, email=email)
    return {"Authorization": f"Bearer {issue_token(identity, settings.secret_key.get_secret_value(), 5)}"}
