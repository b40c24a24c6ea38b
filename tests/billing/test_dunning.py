"""Dunning end to end on a controllable clock: past due -> read-only -> suspended -> paid."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select
from typer.testing import CliRunner

from models.audit import AuditLog
from models.billing import BillingStatus
from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Tenant, TenantStatus
from tests.billing.conftest import bearer, deliver, event, make_broker, subscription, tenant
from tests.stubs.smtp_stub import ReceivedMail, SmtpStub
from veles.api import create_api
from veles.billing import cli as billing_cli
from veles.billing.dunning import dunning_steps, run_dunning
from veles.cli import app
from veles.config import Settings


def body(mail: ReceivedMail) -> str:
    return str(mail.message.get_content())


def steps_of(settings: Settings, tenant_id: int) -> list[str]:
    with session_scope(settings.database_url) as session:
        rows = session.exec(select(AuditLog.action).where(AuditLog.target == f"tenant:{tenant_id}",
                                                          col(AuditLog.action).startswith("billing."))
                            .order_by(col(AuditLog.id))).all()
        return list(rows)


def test_a_trial_that_ends_unpaid_walks_the_dunning_steps_and_payment_brings_it_back(
        billing_settings: Settings, prices: dict[str, str], smtp_server: SmtpStub) -> None:
    settings = billing_settings.model_copy(update=smtp_server.settings_fields())
    broker = make_broker(settings, billing=BillingStatus.TRIALING)
    start = utcnow()
    with session_scope(settings.database_url) as session:
        row = session.get(Tenant, broker.tenant_id)
        assert row is not None
        row.trial_ends_at = start + timedelta(days=14)
    headers = bearer(settings, broker.tenant_id, broker.email)

    asyncio.run(run_dunning(settings, start + timedelta(days=13)))  # still trialing: nothing
    assert tenant(settings, broker.tenant_id).billing_status is BillingStatus.TRIALING

    asyncio.run(run_dunning(settings, start + timedelta(days=14, hours=1)))
    assert tenant(settings, broker.tenant_id).billing_status is BillingStatus.PAST_DUE
    assert "past due (the trial ended" in body(smtp_server.wait_for(1)[-1])
    with TestClient(create_api(settings)) as client:  # past due: everything still works
        assert client.put("/api/v1/me/alerts", json={"desktop_notifications": True},
                          headers=headers).status_code == 200

    asyncio.run(run_dunning(settings, start + timedelta(days=14 + settings.billing_grace_days, hours=2)))
    row = tenant(settings, broker.tenant_id)
    assert (row.billing_status, row.status) == (BillingStatus.READ_ONLY, TenantStatus.ACTIVE)
    assert "read-only" in body(smtp_server.wait_for(2)[-1])
    with TestClient(create_api(settings)) as client:
        live = client.get("/api/v1/book", headers=headers)
        change = client.put("/api/v1/me/alerts", json={"desktop_notifications": False}, headers=headers)
    assert live.status_code == 200
    assert change.status_code == 403
    assert "read-only" in change.json()["detail"]
    assert "/plan" in change.json()["detail"]

    again = dunning_steps(settings, start + timedelta(days=14 + settings.billing_grace_days, hours=3))
    assert again.steps == []  # idempotent at its step

    asyncio.run(run_dunning(settings, start + timedelta(days=14 + settings.billing_suspend_days, hours=3)))
    row = tenant(settings, broker.tenant_id)
    assert (row.billing_status, row.status) == (BillingStatus.SUSPENDED, TenantStatus.SUSPENDED)
    assert "suspended" in str(smtp_server.wait_for(3)[-1].message["Subject"])

    paid = event("customer.subscription.created",
                 subscription(broker, f"sub_back_{broker.tenant_id}", "active", prices["starter"], "starter"),
                 int(time.time()))
    with TestClient(create_api(settings)) as client:
        assert deliver(client, paid).status_code == 200
    row = tenant(settings, broker.tenant_id)
    assert (row.billing_status, row.status) == (BillingStatus.ACTIVE, TenantStatus.ACTIVE)
    assert row.lapsed_at is None
    assert "active again" in body(smtp_server.wait_for(4)[-1])
    assert steps_of(settings, broker.tenant_id) == [
        "billing.past_due", "billing.read_only", "billing.suspended", "billing.reactivated",
        "billing.subscription"]


def test_a_failed_payment_starts_the_clock_and_a_payment_stops_it(
        billing_settings: Settings, prices: dict[str, str], smtp_server: SmtpStub) -> None:
    settings = billing_settings.model_copy(update=smtp_server.settings_fields())
    broker = make_broker(settings)
    now = int(time.time())
    sub_id = f"sub_dun_{broker.tenant_id}"
    with TestClient(create_api(settings)) as client:
        deliver(client, event("customer.subscription.created",
                              subscription(broker, sub_id, "active", prices["starter"], "starter"), now - 60))
        invoice = {"id": "in_f", "object": "invoice", "customer": broker.customer, "amount_due": 19_900,
                   "currency": "usd", "hosted_invoice_url": "https://pay.example/in_f"}
        failed = event("invoice.payment_failed", invoice, now - 50)
        deliver(client, failed)
        unpaid = subscription(broker, sub_id, "past_due", prices["starter"], "starter")
        deliver(client, event("customer.subscription.updated", unpaid, now - 40))
    row = tenant(settings, broker.tenant_id)
    assert row.billing_status is BillingStatus.PAST_DUE
    texts = [body(m) for m in smtp_server.wait_for(2)]
    assert any("https://pay.example/in_f" in t for t in texts)
    lapsed = row.lapsed_at
    assert lapsed is not None
    assert all(step.tenant_id != broker.tenant_id
               for step in dunning_steps(settings, utcnow() + timedelta(days=1)).steps)  # in its grace
    with TestClient(create_api(settings)) as client:
        deliver(client, event("customer.subscription.updated",
                              subscription(broker, sub_id, "active", prices["starter"], "starter"), now - 30))
    row = tenant(settings, broker.tenant_id)
    assert (row.billing_status, row.lapsed_at) == (BillingStatus.ACTIVE, None)


def test_the_dunning_command_takes_the_steps_at_the_time_given(
        billing_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = make_broker(billing_settings, billing=BillingStatus.TRIALING)
    with session_scope(billing_settings.database_url) as session:
        row = session.get(Tenant, broker.tenant_id)
        assert row is not None
        row.trial_ends_at = utcnow() + timedelta(days=14)
    monkeypatch.setattr(billing_cli, "get_settings", lambda: billing_settings)
    bad = CliRunner().invoke(app, ["billing", "dunning", "--at", "next tuesday"])
    assert bad.exit_code == 2
    assert "not an ISO 8601 time" in bad.output
    at = (utcnow() + timedelta(days=15)).isoformat()
    ran = CliRunner().invoke(app, ["billing", "dunning", "--at", at])
    assert ran.exit_code == 0, ran.output
    assert f"tenant {broker.tenant_id}: past_due (the trial ended without a subscription)" in ran.output
    assert tenant(billing_settings, broker.tenant_id).billing_status is BillingStatus.PAST_DUE
