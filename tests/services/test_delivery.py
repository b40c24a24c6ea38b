"""Alert delivery: preferences, quiet hours, throttling into digests and the record of every decision.

Runs on the real PostgreSQL (as the RLS-confined app role), a real SMTP server and the Twilio stub
driven by the official client; the last test takes alerts from a real RiskAggregator actor over
the Redis bus and Ray, through LiveFeed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time as clock_time
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import ray
from sqlmodel import col, select

from actors.mt5_account import AccountActor
from actors.names import aggregator_name
from actors.risk_aggregator import RiskAggregator
from models.alerts import Severity
from models.db import session_scope, tenant_session
from models.notifications import Channel, Delivery, DeliveryPreference, DeliveryStatus
from models.tenancy import Role, Tenant, User
from tests.stubs.smtp_stub import SmtpStub, free_port
from tests.stubs.twilio_stub import TwilioStub
from veles.config import Settings
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures
from veles.services.delivery import (
    AlertDelivery,
    DeliveryView,
    Preferences,
    alert_key,
    deliveries,
    load_preferences,
    save_preferences,
)
from veles.services.errors import InvalidInput
from veles.services.live import LiveFeed

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_serial = itertools.count(1)


class Clock:
    """Time the test sets: delivery asks it for `now`, so windows and quiet hours are exact."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def alert(severity: str = "critical", subject: str = "100042", at: datetime = T0, status: str = "raised",
          rule: str = "stop_out") -> dict[str, Any]:
    """An alert row as the aggregator publishes it (`actors.wire.alert_row`)."""
    return {"rule_id": rule, "kind": "account_state", "severity": severity, "subject": subject,
            "value": 2.0, "threshold": 2.0, "status": status, "time_msc": int(at.timestamp() * 1000),
            "message": f"Account {subject} is in {rule.replace('_', '-')}"}


@dataclasses.dataclass
class Desk:
    tenant_id: int
    dealer: int  # risk manager: critical on portal, e-mail and SMS, 5-minute digests
    viewer: int  # no preferences: the defaults
    nophone: int  # wants SMS for critical but has no number


@pytest.fixture
def desk(database: str) -> Desk:
    """A fresh tenant with three risk users and one inactive user who must get nothing."""
    n = next(_serial)
    with session_scope(database) as db:
        tenant = Tenant(name=f"delivery-{n}-{datetime.now(UTC).timestamp()}")
        db.add(tenant)
        db.flush()
        tenant_id = tenant.id
        assert tenant_id is not None

        def user(name: str, role: Role, phone: str | None = None, active: bool = True) -> int:
            row = User(tenant_id=tenant_id, email=f"{name}-{tenant.id}@broker.test", password_hash="x",
                       role=role, phone=phone, is_active=active)
            db.add(row)
            db.flush()
            assert row.id is not None
            return row.id

        ids = Desk(tenant_id, user("dealer", Role.RISK_MANAGER, "+4915112345678"),
                   user("viewer", Role.VIEWER), user("nophone", Role.TENANT_ADMIN))
        user("gone", Role.RISK_MANAGER, "+4915199999999", active=False)
    with tenant_session(database, ids.tenant_id) as db:
        save_preferences(db, ids.tenant_id, ids.dealer, {
            "channels": {"critical": ["portal", "email", "sms"], "warning": ["portal", "email"]},
            "digest_minutes": 5})
        save_preferences(db, ids.tenant_id, ids.nophone, {"channels": {"critical": ["sms"]}})
    return ids


def settings(database: str, *stubs: TwilioStub | SmtpStub, **extra: Any) -> Settings:
    fields: dict[str, Any] = {}
    for stub in stubs:
        fields |= stub.settings_fields()
    return Settings(_env_file=None, database_url=database, **fields | extra)


def records(database: str, tenant_id: int) -> list[DeliveryView]:
    with tenant_session(database, tenant_id) as db:
        return list(reversed(deliveries(db, tenant_id, limit=1000)))


def summary(rows: list[DeliveryView], user_id: int, channel: Channel) -> list[tuple[str, int, str]]:
    mine = [r for r in rows if r.user_id == user_id and r.channel == channel]
    return [(r.status.value, r.alerts, r.reason) for r in mine]


async def test_a_storm_becomes_one_message_then_one_digest_per_channel(
    database: str, desk: Desk, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    clock = Clock(T0)
    delivery = AlertDelivery(settings(database, smtp_server, twilio_stub), desk.tenant_id, clock=clock)
    for i in range(20):
        clock.now = T0 + timedelta(seconds=3 * i)
        await delivery.handle(alert(subject=str(100_000 + i), at=clock.now))
    rows = records(database, desk.tenant_id)

    throttled = ("suppressed", 1, "throttled: in the digest due 12:05:00 UTC")
    for channel in (Channel.EMAIL, Channel.SMS):
        assert summary(rows, desk.dealer, channel) == [("sent", 1, "")] + [throttled] * 19
    assert summary(rows, desk.dealer, Channel.PORTAL) == [("sent", 1, "")] * 20
    assert summary(rows, desk.viewer, Channel.PORTAL) == [("sent", 1, "")] * 20  # defaults: portal
    assert summary(rows, desk.viewer, Channel.EMAIL) == [("sent", 1, "")] + [throttled] * 19  # critical
    no_phone = ("failed", 1, "no phone number on file")
    assert summary(rows, desk.nophone, Channel.SMS) == [no_phone] + [throttled] * 19
    assert len(smtp_server.wait_for(2)) == 2
    assert [m.body for m in twilio_stub.messages] == ["Veles CRITICAL: Account 100000 is in stop-out"]

    clock.now = T0 + timedelta(minutes=4)
    await delivery.flush()  # the window is still open: nothing yet
    assert len(records(database, desk.tenant_id)) == len(rows)

    clock.now = T0 + timedelta(minutes=5)
    await delivery.flush()
    digests = [r for r in records(database, desk.tenant_id) if r.alert_key.startswith("digest:")]
    assert sorted((r.user_id, r.channel.value, r.status.value, r.alerts) for r in digests) == sorted([
        (desk.dealer, "email", "sent", 19), (desk.dealer, "sms", "sent", 19),
        (desk.viewer, "email", "sent", 19), (desk.nophone, "sms", "failed", 19)])
    mails = smtp_server.wait_for(4)
    subjects = sorted(m.message["Subject"] for m in mails[2:])
    assert subjects == ["[Veles] 19 alerts (19 critical) since 12:00 UTC"] * 2
    body = mails[2].message.get_content()
    assert "Account 100019 is in stop-out" in body
    assert "Account 100000 is in stop-out" not in body  # that one went out on its own
    assert twilio_stub.messages[-1].body.startswith("Veles: 19 alerts (19 critical) since 12:00 UTC; latest:")

    clock.now = T0 + timedelta(minutes=7)  # inside the next window: throttled into the next digest
    await delivery.handle(alert(subject="200000", at=clock.now))
    assert summary(records(database, desk.tenant_id), desk.dealer, Channel.SMS)[-1] == (
        "suppressed", 1, "throttled: in the digest due 12:10:00 UTC")
    clock.now = T0 + timedelta(minutes=10)
    await delivery.flush()
    clock.now = T0 + timedelta(minutes=16)  # a window that held nothing closes: the next alert goes at once
    await delivery.flush()
    await delivery.handle(alert(subject="300000", at=clock.now))
    assert summary(records(database, desk.tenant_id), desk.dealer, Channel.SMS)[-1] == ("sent", 1, "")
    assert twilio_stub.messages[-1].body == "Veles CRITICAL: Account 300000 is in stop-out"


async def test_an_alert_seen_twice_is_delivered_once_and_clears_are_not_sent(
    database: str, desk: Desk, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    first = AlertDelivery(settings(database, smtp_server, twilio_stub), desk.tenant_id, clock=Clock(T0))
    await first.handle(alert())
    count = len(records(database, desk.tenant_id))
    restarted = AlertDelivery(settings(database, smtp_server, twilio_stub), desk.tenant_id, clock=Clock(T0))
    await restarted.handle(alert())  # a new consumer re-reads the aggregator's recent alerts
    await restarted.handle(alert(status="cleared"))
    assert len(records(database, desk.tenant_id)) == count
    assert len(twilio_stub.messages) == 1
    assert {r.alert_key for r in records(database, desk.tenant_id)} == {alert_key(alert())}


async def test_quiet_hours_in_the_users_zone_and_the_critical_override(
    database: str, desk: Desk, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    with tenant_session(database, desk.tenant_id) as db:  # 12:00 UTC is 21:00 in Tokyo
        save_preferences(db, desk.tenant_id, desk.dealer, {
            "channels": {"critical": ["email", "sms"], "warning": ["email"]}, "time_zone": "Asia/Tokyo",
            "quiet_start": "20:00", "quiet_end": "07:00", "critical_overrides_quiet": True})
        save_preferences(db, desk.tenant_id, desk.viewer, {
            "channels": {"critical": ["email"]}, "time_zone": "Asia/Tokyo",
            "quiet_start": "20:00", "quiet_end": "07:00", "critical_overrides_quiet": False})
    delivery = AlertDelivery(settings(database, smtp_server, twilio_stub), desk.tenant_id, clock=Clock(T0))
    await delivery.handle(alert(severity="warning", rule="margin_call"))
    await delivery.handle(alert(severity="critical"))
    rows = records(database, desk.tenant_id)
    quiet = "quiet hours 20:00-07:00 Asia/Tokyo"
    assert summary(rows, desk.dealer, Channel.EMAIL) == [("suppressed", 1, quiet), ("sent", 1, "")]
    assert summary(rows, desk.dealer, Channel.SMS) == [("sent", 1, "")]
    assert summary(rows, desk.viewer, Channel.EMAIL) == [("suppressed", 1, quiet)]
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [[f"dealer-{desk.tenant_id}@broker.test"]]


async def test_unreachable_servers_are_recorded_as_failed_with_the_reason(database: str, desk: Desk) -> None:
    dead = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False,
            "twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "t",
            "twilio_from_number": "+15005550006",
            "twilio_api_url": f"http://127.0.0.1:{free_port()}", "messaging_timeout": 2.0}
    delivery = AlertDelivery(settings(database, **dead), desk.tenant_id, clock=Clock(T0))
    await delivery.handle(alert())
    rows = records(database, desk.tenant_id)
    [(status, _, reason)] = summary(rows, desk.dealer, Channel.EMAIL)
    assert status == "failed"
    assert reason.startswith("e-mail via 127.0.0.1:")
    [(status, _, reason)] = summary(rows, desk.dealer, Channel.SMS)
    assert status == "failed"
    assert "could not be reached" in reason
    assert summary(rows, desk.dealer, Channel.PORTAL) == [("sent", 1, "")]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"severity": "apocalyptic"}, "'apocalyptic' is not a valid Severity"),
        ({"time_msc": "noon"}, "alert time_msc: 'noon' is missing or of the wrong type"),
        ({"subject": None}, "alert subject: None is missing"),
        ({"value": True}, "alert value: True is missing"),
    ],
)
async def test_a_malformed_alert_names_the_field_and_records_nothing(
    database: str, desk: Desk, change: dict[str, Any], error: str
) -> None:
    delivery = AlertDelivery(settings(database), desk.tenant_id, clock=Clock(T0))
    with pytest.raises(ValueError, match=error):
        await delivery.handle(alert() | change)
    assert records(database, desk.tenant_id) == []


def test_quiet_hours_that_cross_midnight() -> None:
    prefs = Preferences(zone=ZoneInfo("Europe/Berlin"), quiet=(time(22, 0), time(7, 0)),
                        critical_overrides_quiet=True)
    winter = datetime(2026, 1, 15, tzinfo=UTC)
    assert prefs.quiet_reason(winter.replace(hour=20, minute=59), "warning") is None  # 21:59 local
    assert prefs.quiet_reason(winter.replace(hour=21), "warning") == "quiet hours 22:00-07:00 Europe/Berlin"
    assert prefs.quiet_reason(winter.replace(hour=5, minute=59), "info") is not None  # 06:59 local
    assert prefs.quiet_reason(winter.replace(hour=6), "info") is None  # 07:00 local
    assert prefs.quiet_reason(winter.replace(hour=23), "critical") is None  # the override


@pytest.mark.parametrize(
    ("form", "field", "reason"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone 'Mars/Olympus'"),
        ({"quiet_start": "22:00"}, "quiet_end", "quiet hours need both a start and an end"),
        ({"quiet_start": "22:00", "quiet_end": "22:00"}, "quiet_end", "must differ from quiet_start"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start", "valid time"),
        ({"channels": {"critical": ["pager"]}}, "channels.critical.0", "'portal', 'email' or 'sms'"),
        ({"channels": {"fatal": ["sms"]}}, "channels.fatal.[key]", "'info', 'warning' or 'critical'"),
        ({"digest_minutes": 0}, "digest_minutes", "greater than or equal to 1"),
        ({"sound": "loud"}, "sound", "Extra inputs are not permitted"),
    ],
)
def test_bad_preferences_name_the_field_and_keep_what_was_stored(
    database: str, desk: Desk, form: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused, tenant_session(database, desk.tenant_id) as db:
        save_preferences(db, desk.tenant_id, desk.dealer, form)
    assert refused.value.field == field
    assert reason in refused.value.reason
    with tenant_session(database, desk.tenant_id) as db:
        assert load_preferences(db, desk.tenant_id, desk.dealer).channels[Severity.CRITICAL] == {
            Channel.PORTAL, Channel.EMAIL, Channel.SMS}


def _stopped_out(figures: AccountFigures) -> AccountFigures:
    return dataclasses.replace(figures, state="stop_out", margin_level=40.0)


@pytest.fixture
def aggregator(ray_local: None, redis_url: str, desk: Desk) -> Iterator[Any]:
    actor = RiskAggregator.options(  # type: ignore[attr-defined]
        name=aggregator_name(desk.tenant_id), namespace="veles-test").remote(desk.tenant_id, 4.0, redis_url)
    ray.get(actor.start.remote())
    yield actor
    ray.kill(actor)


async def test_alerts_from_the_aggregator_reach_the_phone_over_the_bus(
    database: str, desk: Desk, redis_url: str, aggregator: Any, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    config = settings(database, smtp_server, twilio_stub, redis_url=redis_url, ray_namespace="veles-test")
    broker = SimulatedBroker(accounts=1, seed=5, start_msc=1_790_000_000_000)
    symbols = {s.name: s for s in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    healthy = dataclasses.replace(AccountActor(broker.accounts()[0], symbols, board).figures(), state="ok",
                                  margin_level=400.0)
    feed = LiveFeed(config)
    delivery = AlertDelivery(config, desk.tenant_id, flush_every=0.2)
    task = asyncio.create_task(delivery.run(feed.alert_stream(desk.tenant_id, poll_s=0.5)))
    try:
        await aggregator.apply.remote([healthy], 1.0)
        await aggregator.apply.remote([_stopped_out(healthy)], 2.0)
        # wait for both things asserted below (the SMS of the stop-out and the margin call's portal
        # delivery), not the first alone: they are recorded by separate flushes
        for _ in range(200):
            rows = records(database, desk.tenant_id)
            sms = any(r.channel == Channel.SMS and r.user_id == desk.dealer for r in rows)
            warned = any(r.alert_key.startswith("margin_call:") and r.status == DeliveryStatus.SENT
                         for r in rows)
            if sms and warned:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.aclose()
    rows = records(database, desk.tenant_id)
    assert summary(rows, desk.dealer, Channel.SMS) == [("sent", 1, "")]
    assert [m.to for m in twilio_stub.messages] == ["+4915112345678"]
    assert twilio_stub.messages[0].body.startswith(f"Veles CRITICAL: Account {healthy.login}")
    with tenant_session(database, desk.tenant_id) as db:  # the warning (margin call) reached the portal too
        keys = db.exec(select(Delivery.alert_key).where(Delivery.tenant_id == desk.tenant_id,
                                                        col(Delivery.status) == DeliveryStatus.SENT)).all()
    assert any(key.startswith("margin_call:") for key in keys)


def test_two_first_saves_at_once_leave_one_row_with_the_later_choice(database: str, desk: Desk) -> None:
    """The viewer has no row yet. A inserts it and holds its transaction open; B's insert waits on
    the unique key, fails when A commits, and becomes an update of A's row (no second row)."""
    started = threading.Event()

    def second_save() -> None:
        started.wait()
        with tenant_session(database, desk.tenant_id) as db:
            save_preferences(db, desk.tenant_id, desk.viewer, {"time_zone": "Asia/Tokyo"})

    later = threading.Thread(target=second_save)
    later.start()
    with tenant_session(database, desk.tenant_id) as db:
        save_preferences(db, desk.tenant_id, desk.viewer, {"time_zone": "Europe/Berlin"})
        started.set()
        clock_time.sleep(1.0)  # B is now waiting on the unique key
    later.join(timeout=30)
    assert not later.is_alive()
    with session_scope(database) as db:
        rows = db.exec(select(DeliveryPreference).where(DeliveryPreference.user_id == desk.viewer)).all()
        assert [row.time_zone for row in rows] == ["Asia/Tokyo"]


def test_an_alert_email_reads_without_internal_ids() -> None:
    """Issue 15: e-mails carried "Rule: stop_out" (an engine id) and the state's rank as the value."""
    from veles.services.delivery import email_text

    text = "Account 100042 reached stop out at a margin level of 40.00%."
    raised = alert(subject="100042") | {"rule_id": "stop_out", "value": 40.0, "message": text}
    subject, body = email_text(raised)
    assert subject == "[Veles CRITICAL] Account 100042 reached stop out at a margin level of 40.00%."
    assert "stop_out" not in body
    assert body.startswith("Account 100042 reached stop out at a margin level of 40.00%.\n")
    assert "Raised: 2026-11-20 12:00:00 UTC" in body
