"""The plan page's billing through the API: Checkout to buy a plan, the Billing Portal to change
it, invoices with their PDFs, a plan below usage refused with the reason (official stripe client
against localstripe and the project's fake of Checkout and the Billing Portal)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.billing import BillingStatus
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant
from tests.billing.conftest import bearer, deliver, make_broker, tenant
from tests.stubs.stripe_fake import StripeFake
from veles.api import create_api
from veles.billing.account import PlanStanding, billing_notice, standing
from veles.billing.routes import StandingOut
from veles.config import Settings


def test_checkout_buys_a_plan_then_the_portal_changes_it_and_invoices_list_their_pdfs(
        client: TestClient, billing_settings: Settings, prices: dict[str, str],
        stripe_fake: StripeFake) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    with session_scope(billing_settings.database_url) as session:  # a sign-up has no Stripe customer yet
        row = session.get(Tenant, broker.tenant_id)
        assert row is not None
        row.stripe_customer_id = None
    headers = bearer(billing_settings, broker.tenant_id, broker.email)
    before = client.get("/api/v1/billing", headers=headers).json()
    assert (before["plan"], before["billing_status"], before["subscribed"]) == ("starter", "trialing", False)
    assert client.get("/api/v1/billing/invoices", headers=headers).json() == []  # no customer yet

    answer = client.post("/api/v1/billing/checkout", json={"plan": "professional"}, headers=headers)
    assert answer.status_code == 200, answer.text
    checkout_id = answer.json()["url"].rsplit("/", 1)[1]
    session = stripe_fake.checkouts[checkout_id]
    customer = tenant(billing_settings, broker.tenant_id).stripe_customer_id
    assert customer is not None
    assert session["customer"] == customer
    assert session["mode"] == "subscription"
    assert session["line_items_price"] == prices["professional"]
    assert session["client_reference_id"] == str(broker.tenant_id)
    assert session["success_url"].endswith("/plan?checkout=done")

    paid = stripe_fake.complete_checkout(checkout_id)  # the customer pays; Stripe sends the event
    assert deliver(client, paid).status_code == 200
    after = client.get("/api/v1/billing", headers=headers).json()
    assert (after["plan"], after["billing_status"], after["subscribed"]) == ("professional", "active", True)

    listed = client.get("/api/v1/billing/invoices", headers=headers).json()
    assert listed, "the subscription's first invoice"
    first = listed[0]
    assert first["amount_paid"] == 49_900
    assert first["currency"] == "usd"
    assert first["pdf"].endswith(f"/invoice/{first['id']}/pdf")
    assert first["hosted"]

    checkouts = len(stripe_fake.checkouts)
    change = client.post("/api/v1/billing/checkout", json={"plan": "enterprise"}, headers=headers)
    assert change.status_code == 200, change.text
    portal = stripe_fake.portals[change.json()["url"].rsplit("/", 1)[1]]
    assert len(stripe_fake.checkouts) == checkouts  # never a second subscription
    assert portal["customer"] == customer
    assert portal["flow"]["type"] == "subscription_update"
    assert portal["flow"]["subscription_update"]["subscription"] == paid["data"]["object"]["subscription"]

    manage = client.post("/api/v1/billing/portal", headers=headers)
    assert manage.status_code == 200
    plain = stripe_fake.portals[manage.json()["url"].rsplit("/", 1)[1]]
    assert plain["customer"] == customer
    assert plain["return_url"].endswith("/plan")
    assert plain["flow"] is None


def test_a_plan_below_usage_is_refused_with_the_reason(
        client: TestClient, billing_settings: Settings, prices: dict[str, str],
        stripe_fake: StripeFake) -> None:
    broker = make_broker(billing_settings, plan=Plan.PROFESSIONAL, billing=BillingStatus.TRIALING)
    with session_scope(billing_settings.database_url) as session:
        for n in range(2):
            session.add(Mt5Connection(tenant_id=broker.tenant_id, server=f"sim://usage{n}", login=2000 + n,
                                      credentials_encrypted=b"x"))
    headers = bearer(billing_settings, broker.tenant_id, broker.email)
    checkouts = len(stripe_fake.checkouts)
    refused = client.post("/api/v1/billing/checkout", json={"plan": "starter"}, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["detail"] == ("Starter is below your current usage: the Starter plan allows 1 MT5 "
                                        "server(s); this would make 2; remove servers or accounts first")
    assert len(stripe_fake.checkouts) == checkouts  # Stripe was not asked
    unknown = client.post("/api/v1/billing/checkout", json={"plan": "platinum"}, headers=headers)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "plan"]
    viewer = bearer(billing_settings, broker.tenant_id, broker.email, Role.VIEWER)
    assert client.post("/api/v1/billing/portal", headers=viewer).status_code == 403
    assert client.get("/api/v1/billing/invoices", headers=viewer).status_code == 403


def test_without_stripe_the_billing_routes_say_so(billing_settings: Settings) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    unset = billing_settings.model_copy(update={"stripe_secret_key": SecretStr("")})
    with TestClient(create_api(unset)) as bare:
        headers = bearer(unset, broker.tenant_id, broker.email)
        answer = bare.post("/api/v1/billing/checkout", json={"plan": "professional"}, headers=headers)
        assert answer.status_code == 404  # as the webhook: nothing to reach here, no server fault
        assert answer.json()["detail"] == "billing is not configured: set STRIPE_SECRET_KEY"
        assert bare.get("/api/v1/billing", headers=headers).json()["plan"] == "starter"  # reads stay


def test_the_api_shows_the_stored_standing_field_by_field(client: TestClient,
                                                          billing_settings: Settings) -> None:
    """`GET /api/v1/billing` is `account.standing` as stored, every shared field (the API model and
    the stored one derive from one base, so a field added to one is in the other) plus the notice;
    whether a Stripe customer exists stays inside."""
    broker = make_broker(billing_settings, plan=Plan.PROFESSIONAL, billing=BillingStatus.PAST_DUE)
    answer = client.get("/api/v1/billing", headers=bearer(billing_settings, broker.tenant_id, broker.email))
    assert answer.status_code == 200, answer.text
    stored = standing(billing_settings.database_url, broker.tenant_id)
    shown = StandingOut.model_validate(answer.json())
    assert set(StandingOut.model_fields) == {*PlanStanding.model_fields, "notice"}
    assert shown.model_dump(exclude={"notice"}) == stored.model_dump(exclude={"has_customer"})
    assert (shown.plan, shown.billing_status) == ("professional", "past_due")
    assert shown.notice == billing_notice("past_due")
    assert "has_customer" not in answer.json()
