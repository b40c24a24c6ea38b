"""Escalation: a critical alert nobody acknowledged within the tenant's delay goes out again, by
e-mail and SMS, to every risk user, whatever their channel choices.

Why. The portal shows an alert and e-mails it once; at 3 a.m. a stop-out nobody has acknowledged
after ten minutes needs a louder second call. Each tenant sets its delay (`EscalationPolicy`,
minutes; none: no escalation). The check runs inside the tenant's supervised delivery consumer
(`AlertDelivery`, every `ESCALATION_CHECK_SECONDS`), never per request, and uses delivery's own
senders and records.

Once. An alert is claimed before anything is sent (`escalated_at` is set by an UPDATE that only
matches while it is unset and the alert is still open), so two checks, or two consumers, never
escalate it twice; every message is a `delivery` row keyed `escalation:<alert id>`, unique per
user and channel. A crash between the claim and the sends loses that escalation's messages
rather than sending them twice: the row says it was escalated, the records say what went out.
Quiet hours apply as for any critical alert (they let it through unless the user chose otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.alerts import Alert, AlertState, EscalationPolicy, Severity
from models.columns import utcnow
from veles.services.audit import record
from veles.services.errors import validated

MIN_MINUTES = 1 / 60  # one second: a smaller delay rounds to nothing in a timedelta
MAX_MINUTES = 1440.0
BATCH = 100  # alerts escalated per check, at most (a storm is escalated over the next checks)


class EscalationForm(BaseModel):
    """A tenant's escalation delay in minutes (fractions allowed); null switches escalation off."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    after_minutes: float | None = Field(default=None, ge=MIN_MINUTES, le=MAX_MINUTES, description=(
        "Minutes a critical alert may stay open and unacknowledged before it is escalated by e-mail "
        "and SMS (one second at the least); null: never."))


def _stored_minutes(db: Session, tenant_id: int) -> float | None:
    statement = (select(EscalationPolicy.after_minutes).where(EscalationPolicy.tenant_id == tenant_id)
                 .order_by(col(EscalationPolicy.id).desc()))
    return db.exec(statement).first()


def escalation_delay(db: Session, tenant_id: int) -> timedelta | None:
    """The tenant's escalation delay; None when it escalates nothing."""
    minutes = _stored_minutes(db, tenant_id)
    return None if minutes is None else timedelta(minutes=minutes)


def get_escalation(db: Session, tenant_id: int) -> EscalationForm:
    """The tenant's escalation setting as the API and the portal show it."""
    return EscalationForm(after_minutes=_stored_minutes(db, tenant_id))


def set_escalation(
    db: Session, tenant_id: int, form: EscalationForm | Mapping[str, Any], *, actor: int | None = None
) -> EscalationForm:
    """Replace the tenant's escalation delay (InvalidInput names `after_minutes` when refused).
    Audited: it decides who is woken."""
    data = validated(EscalationForm, form)
    for row in db.exec(select(EscalationPolicy).where(EscalationPolicy.tenant_id == tenant_id)).all():
        db.delete(row)
    if data.after_minutes is not None:
        db.add(EscalationPolicy(tenant_id=tenant_id, after_minutes=data.after_minutes))
    record(db, "alert.escalation", tenant_id=tenant_id, actor_user_id=actor, target=f"tenant:{tenant_id}",
           details=data.model_dump(mode="json"))
    db.flush()
    return data


@dataclass(frozen=True, slots=True)
class Due:
    """A critical alert to escalate, as its messages need it."""

    id: int
    subject: str
    message: str
    created_at: datetime


def due_alerts(db: Session, tenant_id: int, now: datetime) -> list[Due]:
    """Critical alerts still open and unacknowledged past the tenant's delay, not yet escalated,
    oldest first (none when the tenant has no delay)."""
    delay = escalation_delay(db, tenant_id)
    if delay is None:
        return []
    statement = (select(Alert).where(
        Alert.tenant_id == tenant_id, Alert.severity == Severity.CRITICAL, Alert.state == AlertState.OPEN,
        col(Alert.escalated_at).is_(None), col(Alert.created_at) <= now - delay,
    ).order_by(col(Alert.created_at)).limit(BATCH))
    found = []
    for row in db.exec(statement).all():
        assert row.id is not None
        found.append(Due(row.id, row.subject, row.message, row.created_at))
    return found


def claim(db: Session, tenant_id: int, alert_id: int, now: datetime | None = None) -> bool:
    """Mark the alert escalated; False when someone acknowledged, resolved or escalated it since."""
    result = db.exec(
        update(Alert)
        .where(col(Alert.tenant_id) == tenant_id, col(Alert.id) == alert_id,
               col(Alert.escalated_at).is_(None), col(Alert.state) == AlertState.OPEN)
        .values(escalated_at=now or utcnow())
    )
    return bool(result.rowcount == 1)


def escalation_texts(alert: Due, minutes: float) -> tuple[str, str, str]:
    """Subject, e-mail body and SMS of one escalation."""
    waited = f"{minutes:g} minute" + ("" if minutes == 1 else "s")
    subject = f"[Veles ESCALATED] {alert.message}"[:200].replace("\n", " ")
    body = (f"Nobody has acknowledged this critical alert for {waited}:\n\n{alert.message}\n\n"
            f"Account or symbol: {alert.subject}\nRaised: {alert.created_at:%Y-%m-%d %H:%M:%S} UTC\n"
            "Acknowledge it in the portal (Alerts) to stop further escalation.\n")
    sms = f"Veles ESCALATED (unacknowledged {waited}): {alert.message}"
    return subject, body, sms


def escalation_key(alert_id: int) -> str:
    """The delivery record key of an alert's escalation (one per user and channel)."""
    return f"escalation:{alert_id}"
