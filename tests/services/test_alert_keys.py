"""Alerts the chaos run (`veles chaos`) saw stored but never delivered, each fixed here.

- Two large deals of one account in one millisecond (partial fills) are two alerts with the same
  rule, subject and time: the stream's inbox took the second for a repeat of the first, and
  delivery's key (rule:subject:first raise) named both the same, so the second was never delivered.
- An alert raised and cleared while its numbers were missing from the stream (Redis away) came back
  from the database reload as its clear only, which delivery ignores: never delivered.

Real PostgreSQL (row-level security applies); the aggregator is its real core (`BookPublisher`)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from sqlmodel import select

from actors.risk_aggregator import BookPublisher
from models.db import session_scope, tenant_session
from models.notifications import Channel, Delivery
from models.tenancy import Role, Tenant, User
from tests.actors.support import account_figures
from veles.config import Settings
from veles.risk.events import Deal, DealKind
from veles.services.alert_inbox import AlertInbox
from veles.services.alert_order import stored_since
from veles.services.delivery import AlertDelivery

pytestmark = [pytest.mark.postgres]


def _tenant_with_desk(url: str) -> int:
    with session_scope(url) as db:
        tenant = Tenant(name=f"keys-{uuid.uuid4().hex[:10]}")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        db.add(User(tenant_id=tenant.id, email=f"desk-{tenant.id}@broker.test", password_hash="x",
                    role=Role.RISK_MANAGER))
        return tenant.id


def _portal_keys(url: str, tenant_id: int) -> list[str]:
    with tenant_session(url, tenant_id) as db:
        rows = db.exec(select(Delivery.alert_key).where(Delivery.tenant_id == tenant_id,
                                                        Delivery.channel == Channel.PORTAL)).all()
        return sorted(rows)


async def test_two_large_deals_in_one_millisecond_are_two_alerts_delivered(database: str) -> None:
    tenant_id = _tenant_with_desk(database)
    core = BookPublisher(tenant_id, database_url=database)
    await core.load()
    figures = account_figures()
    fills = [Deal(ticket=ticket, login=figures.login, kind=DealKind.BUY, time_msc=1_790_000_006_500,
                  symbol="XAUUSD", volume=60.0, price=2000.0, position_id=ticket) for ticket in (71, 72)]
    await core.announce(core.apply([figures], sent_at=1.0, deals=fills))
    first, second = core.recent_alerts
    assert (first["rule_id"], first["time_msc"]) == (second["rule_id"], second["time_msc"])
    assert first["id"] != second["id"]

    inbox = AlertInbox()
    assert inbox.offer(first)
    assert inbox.offer(second)
    assert inbox.pending == 2, "the second deal was taken for a repeat of the first"

    delivery = AlertDelivery(Settings(_env_file=None, database_url=database), tenant_id)
    await delivery.handle(first)
    await delivery.handle(second)
    await delivery.handle(second)  # seen again (the poll after the topic): still delivered once
    assert len(_portal_keys(database, tenant_id)) == 2
    assert core.deal_log is not None
    # the deal log writes the two fills on its own thread's next beat: written now, inside this
    # test, not during the next test's count of SQL statements (test_alert_page)
    assert await asyncio.to_thread(core.deal_log.flush) == 2


async def test_a_reload_brings_the_raise_of_an_alert_cleared_within_the_gap(database: str) -> None:
    tenant_id = _tenant_with_desk(database)
    core = BookPublisher(tenant_id, database_url=database)
    await core.load()
    healthy = dataclasses.replace(account_figures(), state="ok", margin_level=400.0)
    stopped = dataclasses.replace(healthy, state="stop_out", margin_level=40.0)
    core.apply([healthy], sent_at=1.0)
    await core.announce(core.apply([stopped], sent_at=2.0))  # seq 1, 2: margin call, stop out
    await core.announce(core.apply([dataclasses.replace(healthy, updated_msc=healthy.updated_msc + 1)],
                                   sent_at=3.0))  # seq 3, 4: both cleared

    reached, messages = stored_since(database, tenant_id, 0)  # the stream missed 1-4

    assert reached == 4
    assert [(m["rule_id"], m["status"]) for m in messages] == [
        ("margin_call", "raised"), ("margin_call", "cleared"),
        ("stop_out", "raised"), ("stop_out", "cleared")]
    delivery = AlertDelivery(Settings(_env_file=None, database_url=database), tenant_id)
    for message in messages:
        await delivery.handle(message)
    raised = {m["rule_id"]: m for m in core.recent_alerts if m["status"] == "raised"}
    assert _portal_keys(database, tenant_id) == sorted(
        f"{rule}:{m['subject']}:{m['first_msc'] or m['time_msc']}" for rule, m in raised.items())
