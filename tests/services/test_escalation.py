"""Escalation (issue 15): a critical alert left unacknowledged for the tenant's delay goes out by
e-mail and SMS, once, from the supervised delivery consumer, not per request.

Real PostgreSQL (the RLS-confined role), a real SMTP server, the Twilio stub driven by the official
client, and real time: the delay and the consumer's check interval are shortened through the
tenant's setting and `ESCALATION_CHECK_SECONDS`, never by mocking the clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from actors.alert_store import AlertStore
from models.alerts import Alert, Severity
from models.db import session_scope, tenant_session
from models.notifications import DeliveryStatus
from models.tenancy import Role, Tenant, User
from tests.actors.support import account_figures
from tests.stubs.smtp_stub import SmtpStub
from tests.stubs.twilio_stub import TwilioStub
from veles.config import Settings
from veles.risk.alerts import AlertEngine
from veles.services.alerts import acknowledge
from veles.services.delivery import AlertDelivery, deliveries
from veles.services.delivery_consumer import DeliveryConsumer
from veles.services.delivery_consumer import DeliveryStatus as ConsumerStatus
from veles.services.errors import InvalidInput
from veles.services.escalation import get_escalation, set_escalation

pytestmark = pytest.mark.postgres
PHONE = "+4915112345678"
DELAY_MINUTES = 0.02  # 1.2 s of real time


@dataclasses.dataclass
class Desk:
    tenant_id: int
    dealer: int  # verified phone: e-mail and SMS
    manager: int  # no phone: e-mail only


@pytest.fixture
def desk(database: str) -> Desk:
    with session_scope(database) as db:
        tenant = Tenant(name=f"escalation-{uuid.uuid4().hex[:10]}")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        dealer = User(tenant_id=tenant.id, email=f"dealer-{tenant.id}@broker.test", password_hash="x",
                      role=Role.RISK_MANAGER, phone=PHONE, phone_verified_at=datetime.now(UTC))
        manager = User(tenant_id=tenant.id, email=f"manager-{tenant.id}@broker.test", password_hash="x",
                       role=Role.TENANT_ADMIN)
        db.add_all([dealer, manager])
        db.flush()
        assert dealer.id is not None and manager.id is not None  # noqa: PT018
        return Desk(tenant.id, dealer.id, manager.id)


def _raise_stop_outs(database: str, tenant_id: int, logins: list[int]) -> dict[str, int]:
    """Critical stop-out and warning margin-call alerts, stored as the aggregator stores them;
    the row id of each alert by (rule, login)."""
    from actors.alert_store import tenant_rules

    engine = AlertEngine(tenant_rules())
    alerts = [a for login in logins for a in engine.on_account(dataclasses.replace(
        account_figures(), login=login, state="stop_out", margin_level=40.0))]
    store = AlertStore(database, tenant_id)
    ids = store.record(alerts)
    return {f"{a.rule_id}:{a.subject}": row_id for a, (row_id, _seq) in zip(alerts, ids, strict=True)
            if row_id is not None}


async def _forever() -> AsyncIterator[dict[str, object]]:
    """An alert stream on which nothing arrives: escalation needs no message to run."""
    await asyncio.Event().wait()
    yield {}


async def _until(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_an_unacknowledged_critical_alert_is_escalated_once_by_email_and_sms(
    database: str, desk: Desk, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    settings = Settings(_env_file=None, database_url=database, escalation_check_seconds=0.2,  # type: ignore[call-arg]
                        **smtp_server.settings_fields() | twilio_stub.settings_fields())
    with tenant_session(database, desk.tenant_id) as db:
        set_escalation(db, desk.tenant_id, {"after_minutes": DELAY_MINUTES}, actor=desk.manager)
    rows = _raise_stop_outs(database, desk.tenant_id, [100001, 100002])
    left, handled = rows["stop_out:100001"], rows["stop_out:100002"]
    with tenant_session(database, desk.tenant_id) as db:  # someone is on the second one
        acknowledge(db, desk.tenant_id, handled, desk.dealer)
    raised_at = time.monotonic()

    status = ConsumerStatus(desk.tenant_id)
    consumer = DeliveryConsumer(lambda: AlertDelivery(settings, desk.tenant_id), _forever, status)
    task = asyncio.create_task(consumer.run())
    try:
        await _until(lambda: len(twilio_stub.messages) >= 1 and len(smtp_server.messages) >= 2,
                     "the escalation's SMS and e-mails")
        assert time.monotonic() - raised_at >= DELAY_MINUTES * 60 - 0.2  # not before its delay
        await asyncio.sleep(1.0)  # five more checks: nothing is escalated twice
        assert status.state == "running"
        assert (status.restarts, status.failures) == (0, 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert [m.to for m in twilio_stub.messages] == [PHONE]
    assert "ESCALATED" in twilio_stub.messages[0].body
    assert "Account 100001 reached stop out" in twilio_stub.messages[0].body
    assert len(smtp_server.messages) == 2  # dealer and manager, the manager has no phone
    with tenant_session(database, desk.tenant_id) as db:
        records = deliveries(db, desk.tenant_id, limit=100)
        escalated = {row.id: row.escalated_at for row in db.exec(select(Alert)).all()}
        severities = {row.id: row.severity for row in db.exec(select(Alert)).all()}
    sent = sorted((r.user_id, r.channel.value, r.alert_key) for r in records)
    key = f"escalation:{left}"
    expected = [(desk.dealer, "email", key), (desk.dealer, "sms", key), (desk.manager, "email", key)]
    assert sent == sorted(expected)
    assert all(r.status is DeliveryStatus.SENT for r in records)
    assert escalated[left] is not None
    assert escalated[handled] is None  # acknowledged in time
    assert all(escalated[i] is None for i, s in severities.items() if s is not Severity.CRITICAL)


def test_the_delay_is_per_tenant_and_refused_by_field(database: str, desk: Desk) -> None:
    with tenant_session(database, desk.tenant_id) as db:
        assert get_escalation(db, desk.tenant_id).after_minutes is None  # off until set
        set_escalation(db, desk.tenant_id, {"after_minutes": 10}, actor=desk.manager)
        set_escalation(db, desk.tenant_id, {"after_minutes": 15}, actor=desk.manager)
        assert get_escalation(db, desk.tenant_id).after_minutes == 15
        # 1e-10: accepted once, it rounded to a zero timedelta and GET answered 500 (OpenAPI fuzz)
        for bad in (0, -1, 1e-10, 100_000, "soon"):
            with pytest.raises(InvalidInput) as refused:
                set_escalation(db, desk.tenant_id, {"after_minutes": bad})
            assert refused.value.field == "after_minutes"
        set_escalation(db, desk.tenant_id, {"after_minutes": None})
        assert get_escalation(db, desk.tenant_id).after_minutes is None


def test_concurrent_claims_of_one_alert_on_postgresql_let_one_through(database: str, desk: Desk) -> None:
    """The claim is one UPDATE that only matches while `escalated_at` is unset: eight replicas
    claiming the same alert at the same moment (a barrier releases them together, each in its
    own transaction on its own connection) get one True between them."""
    import threading

    from veles.services.escalation import claim

    rows = _raise_stop_outs(database, desk.tenant_id, [100009])
    alert_id = rows["stop_out:100009"]
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def replica() -> None:
        with tenant_session(database, desk.tenant_id) as db:
            barrier.wait()
            won.append(claim(db, desk.tenant_id, alert_id))

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]


async def test_two_escalators_at_once_send_each_escalation_once(
    database: str, desk: Desk, smtp_server: SmtpStub, twilio_stub: TwilioStub
) -> None:
    """Two web replicas' delivery consumers check the same tenant at the same moment: both read
    the same due alerts, and each alert is claimed, and its e-mails and SMS sent, by one only."""
    settings = Settings(_env_file=None, database_url=database,
                        **smtp_server.settings_fields() | twilio_stub.settings_fields())
    with tenant_session(database, desk.tenant_id) as db:
        set_escalation(db, desk.tenant_id, {"after_minutes": DELAY_MINUTES}, actor=desk.manager)
    logins = [100011, 100012, 100013, 100014]
    _raise_stop_outs(database, desk.tenant_id, logins)
    await asyncio.sleep(DELAY_MINUTES * 60 + 0.2)
    first, second = AlertDelivery(settings, desk.tenant_id), AlertDelivery(settings, desk.tenant_id)
    counts = await asyncio.gather(first.escalate(), second.escalate())
    assert sum(counts) == len(logins)
    assert await first.escalate() == 0  # nothing is due twice
    assert len(twilio_stub.messages) == len(logins)  # the dealer's verified phone, once per alert
    assert len(smtp_server.messages) == 2 * len(logins)  # dealer and manager, once per alert
    with tenant_session(database, desk.tenant_id) as db:
        keys = [(r.user_id, r.channel.value, r.alert_key) for r in deliveries(db, desk.tenant_id, limit=100)]
    assert len(keys) == len(set(keys)) == 3 * len(logins)
