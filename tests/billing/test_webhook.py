"""The webhook: verified on the raw body, applied once, in the subscription's own order."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import col, select

from models.audit import AuditLog
from models.billing import BillingEvent, BillingStatus
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Plan
from tests.billing.conftest import (
    Broker,
    deliver,
    event,
    make_broker,
    sign,
    subscription,
    tenant,
)
from tests.stubs.stripe_fake import StripeFake
from veles.api import create_api
from veles.billing.client import stripe_client
from veles.config import Settings


def state(broker: Broker, sub_id: str, status: str, plan: str, prices: dict[str, str], at: int,
          kind: str = "customer.subscription.updated") -> dict[str, Any]:
    """An event carrying the subscription `sub_id` in `status` on `plan`, made at `at`."""
    return event(kind, subscription(broker, sub_id, status, prices[plan], plan), at)


def stored(settings: Settings, event_id: str) -> bool:
    with session_scope(settings.database_url) as session:
        return session.get(BillingEvent, event_id) is not None


def audits(settings: Settings, broker: Broker, action: str) -> int:
    with session_scope(settings.database_url) as session:
        query = select(func.count()).select_from(AuditLog).where(
            AuditLog.action == action, AuditLog.target == f"tenant:{broker.tenant_id}")
        return int(session.exec(query).one())


def test_a_paid_subscription_gives_its_plan(client: TestClient, billing_settings: Settings,
                                            prices: dict[str, str]) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    sub = subscription(broker, "sub_paid_1", "active", prices["professional"], "professional")
    answer = deliver(client, event("customer.subscription.created", sub, int(time.time())))
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicate"] is False
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.plan, row.billing_status) == (Plan.PROFESSIONAL, BillingStatus.ACTIVE)
    assert row.subscription_status == "active"
    assert row.stripe_subscription_id == "sub_paid_1"
    assert row.trial_ends_at is None
    assert audits(billing_settings, broker, "billing.subscription") == 1


def test_forged_signatures_are_refused_and_change_nothing(client: TestClient, billing_settings: Settings,
                                                          prices: dict[str, str]) -> None:
    broker = make_broker(billing_settings)
    sub = subscription(broker, "sub_forged", "active", prices["enterprise"], "enterprise")
    document = event("customer.subscription.updated", sub, int(time.time()))
    payload = json.dumps(document).encode()
    wrong_secret = deliver(client, document, secret="whsec_someone_else")
    tampered = client.post("/api/v1/billing/webhook", content=payload.replace(b"enterprise", b"starter!!"),
                           headers={"Stripe-Signature": sign(payload)})
    unsigned = client.post("/api/v1/billing/webhook", content=payload)
    garbage = client.post("/api/v1/billing/webhook", content=payload,
                          headers={"Stripe-Signature": "t=abc,v1=nothex"})
    for answer in (wrong_secret, tampered, unsigned, garbage):
        assert answer.status_code == 400, answer.text
    assert "Signature refused" in wrong_secret.json()["detail"]
    assert unsigned.json()["detail"] == "Stripe-Signature header missing."
    assert not stored(billing_settings, document["id"])
    assert tenant(billing_settings, broker.tenant_id).plan is Plan.STARTER


def test_a_replayed_delivery_is_refused_when_old_and_applied_once_when_fresh(
        client: TestClient, billing_settings: Settings, prices: dict[str, str]) -> None:
    broker = make_broker(billing_settings)
    sub = subscription(broker, "sub_replay", "active", prices["enterprise"], "enterprise")
    old = event("customer.subscription.updated", sub, int(time.time()) - 3600)
    replayed = deliver(client, old, at=int(time.time()) - billing_settings.stripe_webhook_tolerance - 5)
    assert replayed.status_code == 400
    assert "timestamp" in replayed.json()["detail"].lower()
    assert tenant(billing_settings, broker.tenant_id).plan is Plan.STARTER
    fresh = event("customer.subscription.updated", sub, int(time.time()))
    payload = json.dumps(fresh).encode()
    header = {"Stripe-Signature": sign(payload)}
    first = client.post("/api/v1/billing/webhook", content=payload, headers=header)
    again = client.post("/api/v1/billing/webhook", content=payload, headers=header)  # captured and re-sent
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert audits(billing_settings, broker, "billing.subscription") == 1


def test_the_same_event_delivered_at_once_by_many_is_applied_once(
        client: TestClient, billing_settings: Settings, prices: dict[str, str]) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    sub = subscription(broker, f"sub_dup_{broker.tenant_id}", "active", prices["professional"],
                       "professional")
    document = event("customer.subscription.created", sub, int(time.time()))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: deliver(client, document), range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert sum(not a.json()["duplicate"] for a in answers) == 1, [a.json() for a in answers]
    assert audits(billing_settings, broker, "billing.subscription") == 1
    assert audits(billing_settings, broker, "billing.subscribed") == 1


def test_reordered_events_end_in_the_subscriptions_newest_state(
        client: TestClient, billing_settings: Settings, prices: dict[str, str]) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    now = int(time.time())
    created = state(broker, "sub_order", "active", "starter", prices, now - 30,
                    "customer.subscription.created")
    upgraded = state(broker, "sub_order", "active", "enterprise", prices, now - 20)
    unpaid = state(broker, "sub_order", "past_due", "enterprise", prices, now - 10)
    for document in (unpaid, created, upgraded):  # newest first, then the two older ones
        assert deliver(client, document).status_code == 200
    row = tenant(billing_settings, broker.tenant_id)  # an upgrade not paid for gives nothing
    assert (row.plan, row.subscription_status, row.billing_status) == (Plan.STARTER, "past_due",
                                                                       BillingStatus.PAST_DUE)
    paid = state(broker, "sub_order", "active", "enterprise", prices, now - 8)
    deliver(client, paid)
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.plan, row.subscription_status, row.billing_status) == (Plan.ENTERPRISE, "active",
                                                                       BillingStatus.ACTIVE)
    deleted = state(broker, "sub_order", "canceled", "enterprise", prices, now,
                    "customer.subscription.deleted")
    late_active = state(broker, "sub_order", "active", "enterprise", prices, now - 5)
    deliver(client, deleted)
    answer = deliver(client, late_active)
    assert answer.json()["outcome"].startswith("stale")
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.subscription_status, row.billing_status) == ("canceled", BillingStatus.PAST_DUE)


def test_two_states_of_one_second_are_settled_by_reading_stripe(
        client: TestClient, billing_settings: Settings, prices: dict[str, str],
        stripe_fake: StripeFake) -> None:
    """Same `created` second: arrival order cannot decide, so the subscription is read from Stripe
    (localstripe here), whose answer is the newest state."""
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    client_ = stripe_client(billing_settings)
    session = client_.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": broker.customer, "success_url": "http://portal/plan",
        "line_items": [{"price": prices["professional"], "quantity": 1}]})
    real = stripe_fake.complete_checkout(session.id)["data"]["object"]["subscription"]
    second = int(time.time())
    newer_in_stripe = state(broker, real, "active", "professional", prices, second)
    stale_copy = state(broker, real, "past_due", "starter", prices, second)
    deliver(client, newer_in_stripe)
    answer = deliver(client, stale_copy)
    assert answer.status_code == 200
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.plan, row.subscription_status, row.billing_status) == (Plan.PROFESSIONAL, "active",
                                                                       BillingStatus.ACTIVE)


def test_checkout_completed_links_the_customer_and_reads_the_subscription(
        client: TestClient, billing_settings: Settings, prices: dict[str, str],
        stripe_fake: StripeFake) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    session = stripe_client(billing_settings).v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": broker.customer, "client_reference_id": str(broker.tenant_id),
        "success_url": "http://portal/plan", "line_items": [{"price": prices["enterprise"], "quantity": 1}]})
    completed = stripe_fake.complete_checkout(session.id)
    answer = deliver(client, completed)
    assert answer.status_code == 200, answer.text
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.plan, row.billing_status) == (Plan.ENTERPRISE, BillingStatus.ACTIVE)
    assert row.stripe_subscription_id == completed["data"]["object"]["subscription"]
    assert row.current_period_end is not None


def test_a_storm_of_a_thousand_events_ends_in_the_newest_state(
        client: TestClient, billing_settings: Settings, prices: dict[str, str]) -> None:
    """1,000 deliveries to one tenant from 8 threads: 600 distinct subscription states (one a
    second, shuffled), 300 of them delivered twice, and 100 invoice events."""
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    rng = random.Random(19)
    start = int(time.time()) - 10_000
    plans, statuses = ["starter", "professional", "enterprise"], ["active", "past_due", "active", "trialing"]
    states: list[dict[str, Any]] = []
    for i in range(600):
        plan, status = rng.choice(plans), rng.choice(statuses)
        states.append(event("customer.subscription.updated",
                            subscription(broker, "sub_storm", status, prices[plan], plan), start + i))
    newest = state(broker, "sub_storm", "active", "professional", prices, start + 600)
    states[-1] = newest
    invoices = [event(rng.choice(["invoice.paid", "invoice.payment_failed"]),
                      {"id": f"in_{i}", "object": "invoice", "customer": broker.customer,
                       "amount_due": 49_900, "amount_paid": 49_900, "currency": "usd",
                       "subscription": "sub_storm"}, start + i)
                for i in range(100)]
    deliveries = states + rng.sample(states, 300) + invoices
    rng.shuffle(deliveries)
    assert len(deliveries) == 1_000
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda document: deliver(client, document), deliveries))
    assert {a.status_code for a in answers} == {200}
    assert sum(a.json()["duplicate"] for a in answers) == 300
    row = tenant(billing_settings, broker.tenant_id)
    assert (row.plan, row.subscription_status, row.billing_status) == (Plan.PROFESSIONAL, "active",
                                                                       BillingStatus.ACTIVE)
    with session_scope(billing_settings.database_url) as session:
        applied = session.exec(select(func.count()).select_from(BillingEvent)
                               .where(BillingEvent.tenant_ref == broker.tenant_id)).one()
    assert applied == 700


def test_a_downgrade_below_usage_is_applied_with_the_reason_recorded(
        client: TestClient, billing_settings: Settings, prices: dict[str, str]) -> None:
    """Stripe's subscription is the truth once it changed (the portal allowed it): the plan follows,
    the engine closes the connections Starter has no room for, and the audit says why."""
    broker = make_broker(billing_settings, plan=Plan.PROFESSIONAL)
    with session_scope(billing_settings.database_url) as session:
        for n in range(3):
            session.add(Mt5Connection(tenant_id=broker.tenant_id, server=f"sim://down{n}", login=1000 + n,
                                      credentials_encrypted=b"x"))
    document = state(broker, "sub_down", "active", "starter", prices, int(time.time()))
    assert deliver(client, document).status_code == 200
    assert tenant(billing_settings, broker.tenant_id).plan is Plan.STARTER
    with session_scope(billing_settings.database_url) as session:
        entry = session.exec(select(AuditLog).where(AuditLog.action == "billing.subscription",
                                                    AuditLog.target == f"tenant:{broker.tenant_id}")
                             .order_by(col(AuditLog.id).desc())).first()
        assert entry is not None
        assert entry.details["over_limit"] == "the Starter plan allows 1 MT5 server(s); this would make 3"


def test_events_for_no_tenant_and_other_types_are_recorded_not_applied(
        client: TestClient, billing_settings: Settings) -> None:
    stranger = event("customer.subscription.updated", {"id": "sub_x", "object": "subscription",
                                                       "customer": "cus_nobody", "status": "active"},
                     int(time.time()))
    other = event("charge.refunded", {"id": "ch_1", "object": "charge"}, int(time.time()))
    assert deliver(client, stranger).json()["outcome"].startswith("ignored: no tenant")
    assert deliver(client, other).json()["outcome"].startswith("ignored")
    assert stored(billing_settings, stranger["id"])
    assert stored(billing_settings, other["id"])


def test_without_a_webhook_secret_nothing_is_accepted(billing_settings: Settings) -> None:
    unconfigured = billing_settings.model_copy(update={"stripe_webhook_secret": None})
    with TestClient(create_api(unconfigured)) as bare:
        answer = deliver(bare, event("customer.subscription.updated", {"id": "sub_n"}, int(time.time())))
    assert answer.status_code == 404
    assert "STRIPE_WEBHOOK_SECRET" in answer.json()["detail"]


def test_stripe_deliveries_are_not_rate_limited_per_ip(billing_settings: Settings) -> None:
    """Stripe delivers in bursts from a few addresses and retries a 429 for days: its webhook is
    authenticated by the signature, not counted against the per-IP API limit, while every other
    /api/v1 route from the same address still is."""
    limited = billing_settings.model_copy(update={"api_ip_limit": 3})
    with TestClient(create_api(limited), client=(f"198.51.100.{time.time_ns() % 250 + 1}", 443)) as client:
        answers = [deliver(client, event("customer.created", {"id": f"cus_burst_{n}", "object": "customer"},
                                         int(time.time()))) for n in range(10)]
        assert [a.status_code for a in answers] == [200] * 10, answers[-1].text
        assert {a.json()["outcome"] for a in answers} == {"ignored: not an event Veles acts on"}
        forged = deliver(client, event("invoice.paid", {"id": "in_forged"}, int(time.time())),
                         secret="whsec_x")
        assert forged.status_code == 400  # refused by its signature, not by the limiter
        codes = [client.get("/api/v1/me").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]  # the webhook used none of the address's 3 a minute
