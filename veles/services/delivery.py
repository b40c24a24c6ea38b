"""Alert delivery: each raised alert reaches each risk user on the channels they chose, politely.

For every alert the aggregator raises, every active user who may see risk (`VIEW_RISK`) gets it on
the channels their preferences name for its severity (defaults: portal for all, e-mail for
critical; SMS only when chosen and a phone number is on file):

- **portal**: the `Delivery` row is the user's inbox entry; always recorded, never throttled.
- **e-mail / SMS** interrupt people, so two rules hold them back. *Quiet hours* (local time in the
  user's zone; critical alerts pass if the user chose so) suppress the message. *Throttling*: after
  a message, further alerts to the same user and channel within `digest_minutes` are held and go
  out as one digest when the window ends, so a storm of 500 stop-outs is one SMS, not 500.

Every decision is a `Delivery` row (sent, failed with the server's reason, suppressed with why).
Rows are unique per (user, channel, alert key), and an alert whose rows exist is skipped, so an
alert seen twice (a restarted consumer re-reading the aggregator's recent list) is delivered once.
A crash between sending and recording can still send one message twice: at-least-once, by choice.
Digests waiting in memory when the process dies are lost; their alerts stay recorded as suppressed.

The same consumer escalates critical alerts left unacknowledged past the tenant's delay
(`veles.services.escalation`), every `ESCALATION_CHECK_SECONDS`, through the same senders and records.
"""

from __future__ import annotations

import asyncio
import logging
import time as monotonic_time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from time import time as time_now
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from actors.wire import Row
from models.alerts import Severity
from models.columns import utcnow
from models.db import tenant_session
from models.notifications import Channel, Delivery, DeliveryPreference, DeliveryStatus
from models.tenancy import User
from veles.config import Settings
from veles.services.auth import Identity
from veles.services.errors import InvalidInput, NotFound, validated
from veles.services.escalation import (
    Due,
    claim,
    due_alerts,
    escalation_delay,
    escalation_key,
    escalation_texts,
)
from veles.services.messaging import MessagingError, send_email, send_sms
from veles.services.permissions import Permission, allowed

log = logging.getLogger(__name__)


class DeliveryCounts(Protocol):
    """Where `AlertDelivery.run` counts what it did (`delivery_consumer.DeliveryStatus`)."""

    delivered: int
    failures: int
    malformed: int
    last_delivered: float | None
    lag_seconds: float | None

EVENT_KIND = "large_deal"  # alerts of single events (`veles.risk.alerts.AlertKind.LARGE_DEAL`)
DEFAULT_CHANNELS: dict[Severity, frozenset[Channel]] = {
    Severity.INFO: frozenset({Channel.PORTAL}),
    Severity.WARNING: frozenset({Channel.PORTAL}),
    Severity.CRITICAL: frozenset({Channel.PORTAL, Channel.EMAIL}),
}
DEFAULT_DIGEST = timedelta(minutes=5)
RECIPIENTS_TTL = timedelta(seconds=15)  # preference edits reach delivery within this
SMS_TEXT_MAX = 300
DIGEST_LINES = 50


class PreferencesForm(BaseModel):
    """A user's delivery preferences as a form or the API sends them; refusals name the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channels: dict[Severity, list[Channel]] = Field(
        default_factory=lambda: {s: sorted(c) for s, c in DEFAULT_CHANNELS.items()})
    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    critical_overrides_quiet: bool = True
    digest_minutes: int = Field(default=5, ge=1, le=1440)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/London)") from None
        return value


@dataclass(frozen=True)
class Preferences:
    """What one user wants, ready to apply."""

    channels: Mapping[Severity, frozenset[Channel]] = field(default_factory=lambda: DEFAULT_CHANNELS)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    quiet: tuple[time, time] | None = None
    critical_overrides_quiet: bool = True
    digest: timedelta = DEFAULT_DIGEST

    @classmethod
    def of(cls, row: DeliveryPreference | None) -> Preferences:
        """The stored preferences, or the defaults for a user who never set any."""
        if row is None:
            return cls()
        quiet = None
        if row.quiet_start and row.quiet_end:
            quiet = (time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end))
        return cls(
            channels={Severity(s): frozenset(Channel(c) for c in cs) for s, cs in row.channels.items()},
            zone=ZoneInfo(row.time_zone), quiet=quiet, critical_overrides_quiet=row.critical_overrides_quiet,
            digest=timedelta(minutes=row.digest_minutes),
        )

    def quiet_reason(self, now: datetime, severity: Severity | str) -> str | None:
        """Why e-mail and SMS must wait at `now`, or None when they may go out."""
        if self.quiet is None or (Severity(severity) is Severity.CRITICAL and self.critical_overrides_quiet):
            return None
        start, end = self.quiet
        local = now.astimezone(self.zone).time().replace(tzinfo=None)
        inside = start <= local < end if start < end else (local >= start or local < end)
        if not inside:
            return None
        return f"quiet hours {start:%H:%M}-{end:%H:%M} {self.zone.key}"


def save_preferences(
    db: Session, tenant_id: int, user_id: int, form: PreferencesForm | Mapping[str, Any]
) -> None:
    """Store a user's preferences (replacing theirs); InvalidInput names a refused field.

    One row per user (a unique key): a concurrent first save that inserted the row meanwhile makes
    ours an update of it instead of a second row."""
    data = validated(PreferencesForm, form)
    if (data.quiet_start is None) != (data.quiet_end is None):
        raise InvalidInput("quiet_end" if data.quiet_end is None else "quiet_start",
                           "quiet hours need both a start and an end")
    if data.quiet_start is not None and data.quiet_start == data.quiet_end:
        raise InvalidInput("quiet_end", "must differ from quiet_start")
    row = _preference_row(db, tenant_id, user_id)
    if row is None:
        try:
            with db.begin_nested():
                db.add(_fill(DeliveryPreference(tenant_id=tenant_id, user_id=user_id), data))
                db.flush()
            return
        except IntegrityError:
            row = _preference_row(db, tenant_id, user_id)
            if row is None:  # not a concurrent save: the user is not in this tenant
                raise NotFound(f"No user {user_id} in your tenant.") from None
    db.add(_fill(row, data))
    db.flush()


def _fill(row: DeliveryPreference, data: PreferencesForm) -> DeliveryPreference:
    row.channels = {s.value: sorted(c.value for c in set(cs)) for s, cs in data.channels.items()}
    row.time_zone = data.time_zone
    row.quiet_start = data.quiet_start.strftime("%H:%M") if data.quiet_start else None
    row.quiet_end = data.quiet_end.strftime("%H:%M") if data.quiet_end else None
    row.critical_overrides_quiet = data.critical_overrides_quiet
    row.digest_minutes = data.digest_minutes
    row.updated_at = utcnow()
    return row


def _preference_row(db: Session, tenant_id: int, user_id: int) -> DeliveryPreference | None:
    statement = select(DeliveryPreference).where(
        DeliveryPreference.tenant_id == tenant_id, DeliveryPreference.user_id == user_id)
    return db.exec(statement).first()


class PreferencesView(BaseModel):
    """A user's preferences as the API and the settings page show them (the defaults when none
    were saved), with the phone SMS would go to (None: no verified number, so SMS is refused)."""

    channels: dict[Severity, list[Channel]]
    time_zone: str
    quiet_start: str | None = Field(description="HH:MM local time: e-mail and SMS stop.")
    quiet_end: str | None = Field(description="HH:MM local time: they resume (may be the next day).")
    critical_overrides_quiet: bool
    digest_minutes: int
    sms_phone: str | None = Field(description="The verified number SMS alerts go to; None: SMS unavailable.")


def _me(db: Session, actor: Identity) -> User:
    user = db.exec(select(User).where(User.id == actor.user_id, User.tenant_id == actor.tenant_id)).first()
    if user is None:
        raise NotFound("Your user no longer exists.")
    return user


def _sms_phone(user: User) -> str | None:
    return user.phone if user.phone and user.phone_verified_at is not None else None


def my_preferences(db: Session, actor: Identity) -> PreferencesView:
    """The signed-in user's own preferences."""
    prefs = load_preferences(db, actor.tenant_id, actor.user_id)
    quiet = prefs.quiet
    return PreferencesView(
        channels={s: sorted(prefs.channels.get(s, ()), key=list(Channel).index) for s in Severity},
        time_zone=prefs.zone.key,
        quiet_start=quiet[0].strftime("%H:%M") if quiet else None,
        quiet_end=quiet[1].strftime("%H:%M") if quiet else None,
        critical_overrides_quiet=prefs.critical_overrides_quiet,
        digest_minutes=int(prefs.digest.total_seconds() // 60),
        sms_phone=_sms_phone(_me(db, actor)),
    )


def update_my_preferences(
    db: Session, actor: Identity, form: PreferencesForm | Mapping[str, Any]
) -> PreferencesView:
    """Replace the signed-in user's preferences. SMS may be chosen only with a verified phone (an
    SMS code sent to it was entered), so alerts never text a number that is not the user's."""
    data = validated(PreferencesForm, form)
    if _sms_phone(_me(db, actor)) is None:
        for severity in Severity:
            if Channel.SMS in data.channels.get(severity, ()):
                raise InvalidInput(f"channels.{severity.value}",
                                   "SMS needs a verified phone number: set your phone and sign in once "
                                   "with an SMS code")
    save_preferences(db, actor.tenant_id, actor.user_id, data)
    return my_preferences(db, actor)


def load_preferences(db: Session, tenant_id: int, user_id: int) -> Preferences:
    """The user's preferences, or the defaults."""
    return Preferences.of(_preference_row(db, tenant_id, user_id))


@dataclass(frozen=True)
class Recipient:
    """A user who receives the tenant's alerts, with where to reach them."""

    user_id: int
    email: str
    phone: str | None
    prefs: Preferences
    phone_verified: bool = False  # an SMS code sent to `phone` was entered: escalations may text it


def recipients(db: Session, tenant_id: int) -> list[Recipient]:
    """Active users of the tenant allowed to see risk, each with their preferences."""
    users = db.exec(select(User).where(User.tenant_id == tenant_id, col(User.is_active).is_(True))).all()
    found = []
    for user in users:
        if user.id is not None and allowed(user.role, Permission.VIEW_RISK):
            found.append(Recipient(user.id, user.email, user.phone, load_preferences(db, tenant_id, user.id),
                                   user.phone_verified_at is not None))
    return found


_ALERT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "rule_id": str, "severity": str, "subject": str, "status": str, "time_msc": int, "message": str,
    "value": (int, float),
    "threshold": (int, float, type(None)),  # None: reloaded from its row, which keeps no threshold
}


def check_alert(alert: Row) -> None:
    """ValueError naming the first missing or mistyped field of an alert row (`actors.wire.alert_row`)."""
    if not isinstance(alert, dict):
        raise ValueError(f"alert: {alert!r:.200} is not an object")
    for name, kind in _ALERT_FIELDS.items():
        if not isinstance(alert.get(name), kind) or isinstance(alert.get(name), bool):
            raise ValueError(f"alert {name}: {alert.get(name)!r} is missing or of the wrong type")
    Severity(alert["severity"])


def alert_key(alert: Row) -> str:
    """Identifies one alert of one rule on one subject, the same every time it is seen: by its
    first raise, so the repeats the engine's cool-down folds into it are not sent again. A
    large-deal alert is an event of one deal, and one account can deal twice in one millisecond
    (partial fills): its stored row's id joins the key, or the second deal would be taken for the
    first and never delivered."""
    first = alert.get("first_msc") or alert["time_msc"]
    key = f"{alert['rule_id']}:{alert['subject']}:{first}"
    if alert.get("kind") == EVENT_KIND and isinstance(alert.get("id"), int):
        key = f"{key}:{alert['id']}"
    return key[:200]


def _when(alert: Row) -> str:
    return datetime.fromtimestamp(alert["time_msc"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def email_text(alert: Row) -> tuple[str, str]:
    """Subject and body of one alert's e-mail."""
    severity = str(alert["severity"]).upper()
    subject = f"[Veles {severity}] {alert['message']}"[:200].replace("\n", " ")
    # The message says what happened with the value that matters; no internal rule ids here.
    body = f"{alert['message']}\n\nAccount or symbol: {alert['subject']}\nRaised: {_when(alert)}\n"
    return subject, body


def sms_text(alert: Row) -> str:
    """One alert's SMS."""
    return f"Veles {str(alert['severity']).upper()}: {alert['message']}"[:SMS_TEXT_MAX]


def digest_texts(alerts: Sequence[Row], since: datetime) -> tuple[str, str, str]:
    """Subject, e-mail body and SMS of a digest of `alerts` held since `since`."""
    critical = sum(1 for a in alerts if a["severity"] == Severity.CRITICAL)
    head = f"{len(alerts)} alerts ({critical} critical) since {since:%H:%M} UTC"
    lines = [f"{_when(a)}  {str(a['severity']).upper():8}  {a['message']}" for a in alerts[-DIGEST_LINES:]]
    more = len(alerts) - len(lines)
    body = "\n".join([head, "", *lines] + ([f"... and {more} earlier"] if more > 0 else [])) + "\n"
    sms = f"Veles: {head}; latest: {alerts[-1]['message']}"[:SMS_TEXT_MAX]
    return f"[Veles] {head}", body, sms


@dataclass
class _Window:
    """Throttling state of one user and channel: messages wait until `end`, then go as a digest."""

    start: datetime
    end: datetime
    held: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class _Outcome:
    status: DeliveryStatus
    reason: str = ""


class AlertDelivery:
    """Delivers one tenant's alerts; `run` consumes a stream of alert rows until cancelled."""

    def __init__(
        self, settings: Settings, tenant_id: int, clock: Callable[[], datetime] = utcnow,
        flush_every: float = 1.0,
    ) -> None:
        self._settings = settings
        self._tenant_id = tenant_id
        self._clock = clock
        self._flush_every = flush_every
        self._windows: dict[tuple[int, Channel], _Window] = {}
        self._recipients: list[Recipient] = []
        self._loaded_at: datetime | None = None

    async def run(self, alerts: AsyncIterator[Row], status: DeliveryCounts | None = None) -> None:
        """Deliver every raised alert of `alerts`, sending due digests meanwhile. No message ends
        the run: one that is not an alert is logged and counted in `status.malformed`, one whose
        delivery fails (the database away, a bug) in `status.failures`, and the next one is taken.
        """
        flusher = asyncio.create_task(self._flush_forever())
        try:
            async for alert in alerts:
                try:
                    await self.handle(alert)
                except ValueError as exc:  # a malformed alert: say which field, go on with the next
                    log.error("tenant %s: alert not delivered: %s", self._tenant_id, exc)
                    if status is not None:
                        status.malformed += 1
                except Exception:
                    log.exception("tenant %s: alert %.200r not delivered", self._tenant_id, alert)
                    if status is not None:
                        status.failures += 1
                else:
                    if status is not None:
                        status.delivered += 1
                        status.last_delivered = time_now()
                        stored_at = alert.get("stored_at")  # wall clock; time_msc is the feed's
                        if isinstance(stored_at, int | float) and not isinstance(stored_at, bool):
                            status.lag_seconds = max(0.0, status.last_delivered - stored_at)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)

    async def _flush_forever(self) -> None:
        next_escalation = monotonic_time.monotonic() + self._settings.escalation_check_seconds
        while True:
            await asyncio.sleep(min(self._flush_every, self._settings.escalation_check_seconds))
            try:
                await self.flush()
            except SQLAlchemyError:
                log.exception("tenant %s: digests not delivered", self._tenant_id)
            if monotonic_time.monotonic() >= next_escalation:
                next_escalation = monotonic_time.monotonic() + self._settings.escalation_check_seconds
                try:
                    await self.escalate()
                except SQLAlchemyError:
                    log.exception("tenant %s: escalations not checked", self._tenant_id)

    async def escalate(self) -> int:
        """Escalate each critical alert left open and unacknowledged past the tenant's delay by
        e-mail and SMS (a verified phone) to every risk user, once (see `veles.services.escalation`);
        how many alerts were escalated. Real time: the rows' own."""
        now = utcnow()
        due, delay = await asyncio.to_thread(self._due, now)
        if not due or delay is None:
            return 0
        people = await self._current_recipients(self._clock())
        escalated = 0
        for alert in due:
            if not await asyncio.to_thread(self._claim, alert.id, now):
                continue  # acknowledged, resolved or escalated meanwhile
            escalated += 1
            records = await self._escalate_one(alert, delay.total_seconds() / 60, people, now)
            await asyncio.to_thread(self._save, records)
            log.warning("tenant %s: critical alert %s unacknowledged for %s: escalated to %d messages",
                        self._tenant_id, alert.id, delay, len(records))
        return escalated

    async def _escalate_one(
        self, alert: Due, minutes: float, people: Sequence[Recipient], now: datetime
    ) -> list[Delivery]:
        subject, body, sms = escalation_texts(alert, minutes)
        records = []
        for person in people:
            for channel in (Channel.EMAIL, Channel.SMS):
                if channel is Channel.SMS and not (person.phone and person.phone_verified):
                    continue
                quiet = person.prefs.quiet_reason(now, Severity.CRITICAL)
                outcome = (_Outcome(DeliveryStatus.SUPPRESSED, quiet) if quiet
                           else await self._send(person, channel, subject, body, sms))
                text = sms if channel is Channel.SMS else body
                records.append(self._record(person.user_id, channel, escalation_key(alert.id),
                                            Severity.CRITICAL, outcome, 1, text))
        return records

    def _due(self, now: datetime) -> tuple[list[Due], timedelta | None]:
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            return due_alerts(db, self._tenant_id, now), escalation_delay(db, self._tenant_id)

    def _claim(self, alert_id: int, now: datetime) -> bool:
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            return claim(db, self._tenant_id, alert_id, now)

    async def handle(self, alert: Row) -> None:
        """Deliver one alert row (as `actors.wire.alert_row` makes it); cleared alerts are ignored.

        ValueError names the field of a malformed row; nothing is sent or recorded for it."""
        check_alert(alert)
        if alert["status"] != "raised":
            return
        now = self._clock()
        key = alert_key(alert)
        severity = Severity(alert["severity"])
        done = await asyncio.to_thread(self._done, key)
        records = []
        for person in await self._current_recipients(now):
            for channel in sorted(person.prefs.channels.get(severity, ()), key=list(Channel).index):
                if (person.user_id, channel) in done:
                    continue
                outcome, text = await self._decide(person, channel, alert, now)
                records.append(self._record(person.user_id, channel, key, severity, outcome, 1, text))
        await asyncio.to_thread(self._save, records)  # one transaction per alert, however many people

    async def flush(self) -> None:
        """Send the digests whose window has ended; a window that held nothing closes."""
        now = self._clock()
        records = []
        for (user_id, channel), window in list(self._windows.items()):
            if window.end > now:
                continue
            if not window.held:
                del self._windows[(user_id, channel)]
                continue
            person = next((p for p in self._recipients if p.user_id == user_id), None)
            if person is None:  # no longer a recipient (deactivated): nothing to send
                del self._windows[(user_id, channel)]
                continue
            held = window.held
            # the storm may go on: the next window starts now, so at most one digest per window
            self._windows[(user_id, channel)] = _Window(now, now + person.prefs.digest)
            severity = max((Severity(a["severity"]) for a in held), key=list(Severity).index)
            subject, body, sms = digest_texts(held, window.start)
            quiet = person.prefs.quiet_reason(now, severity)
            text = sms if channel is Channel.SMS else body
            outcome = (_Outcome(DeliveryStatus.SUPPRESSED, quiet) if quiet
                       else await self._send(person, channel, subject, body, sms))
            key = f"digest:{window.start.isoformat()}"
            records.append(self._record(user_id, channel, key, severity, outcome, len(held), text))
        if records:
            await asyncio.to_thread(self._save, records)

    async def _decide(
        self, person: Recipient, channel: Channel, alert: Row, now: datetime
    ) -> tuple[_Outcome, str]:
        subject, body = email_text(alert)
        sms = sms_text(alert)
        text = sms if channel is Channel.SMS else body
        if channel is Channel.PORTAL:
            return _Outcome(DeliveryStatus.SENT), body
        quiet = person.prefs.quiet_reason(now, Severity(alert["severity"]))
        if quiet:
            return _Outcome(DeliveryStatus.SUPPRESSED, quiet), text
        window = self._windows.get((person.user_id, channel))
        if window is not None and now < window.end:
            window.held.append(alert)
            reason = f"throttled: in the digest due {window.end:%H:%M:%S} UTC"
            return _Outcome(DeliveryStatus.SUPPRESSED, reason), text
        self._windows[(person.user_id, channel)] = _Window(now, now + person.prefs.digest)
        return await self._send(person, channel, subject, body, sms), text

    async def _send(self, person: Recipient, channel: Channel, subject: str, body: str, sms: str) -> _Outcome:
        try:
            if channel is Channel.EMAIL:
                await asyncio.to_thread(send_email, self._settings, [person.email], subject, body)
            elif person.phone is None:
                return _Outcome(DeliveryStatus.FAILED, "no phone number on file")
            else:
                await asyncio.to_thread(send_sms, self._settings, person.phone, sms)
        except (MessagingError, ValueError) as exc:
            return _Outcome(DeliveryStatus.FAILED, str(exc)[:500])
        return _Outcome(DeliveryStatus.SENT)

    async def _current_recipients(self, now: datetime) -> list[Recipient]:
        if self._loaded_at is None or now - self._loaded_at >= RECIPIENTS_TTL:
            self._recipients = await asyncio.to_thread(self._load_recipients)
            self._loaded_at = now
        return self._recipients

    def _load_recipients(self) -> list[Recipient]:
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            return recipients(db, self._tenant_id)

    def _done(self, key: str) -> set[tuple[int, Channel]]:
        """(user, channel) pairs that already have a record for this alert."""
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            rows = db.exec(select(Delivery.user_id, Delivery.channel).where(
                Delivery.tenant_id == self._tenant_id, Delivery.alert_key == key)).all()
            return {(user_id, Channel(channel)) for user_id, channel in rows}

    def _record(
        self, user_id: int, channel: Channel, key: str, severity: Severity, outcome: _Outcome, alerts: int,
        text: str,
    ) -> Delivery:
        return Delivery(tenant_id=self._tenant_id, user_id=user_id, channel=channel, alert_key=key,
                        severity=severity, status=outcome.status, reason=outcome.reason, alerts=alerts,
                        text=text[:2000])

    def _save(self, records: list[Delivery]) -> None:
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            db.add_all(records)


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One delivery record as screens and API clients see it."""

    id: int
    user_id: int
    channel: Channel
    alert_key: str
    severity: Severity
    status: DeliveryStatus
    reason: str
    alerts: int
    text: str
    created_at: datetime

    @classmethod
    def of(cls, row: Delivery) -> DeliveryView:
        """The view of a stored row."""
        assert row.id is not None
        return cls(row.id, row.user_id, row.channel, row.alert_key, row.severity, row.status, row.reason,
                   row.alerts, row.text, row.created_at)


def deliveries(
    db: Session, tenant_id: int, user_id: int | None = None, limit: int = 100
) -> list[DeliveryView]:
    """The tenant's (or one user's) newest delivery records: the portal inbox and the audit of sends."""
    statement = select(Delivery).where(Delivery.tenant_id == tenant_id)
    if user_id is not None:
        statement = statement.where(Delivery.user_id == user_id)
    rows = db.exec(statement.order_by(col(Delivery.id).desc()).limit(limit)).all()
    return [DeliveryView.of(row) for row in rows]
