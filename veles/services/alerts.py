"""A tenant's alerts (list, acknowledge, resolve) and alert rules (list, add, change, remove).

The engine writes an `alert` row for every raise (state open) and resolves it when the cause clears;
people acknowledge ("I am on it") and resolve ("handled") them here, and the row records who
acknowledged and when. Resolving an alert nobody acknowledged records the resolver as having
acknowledged it at the same moment, so every handled alert names a person.

Rules are stored per tenant; after a change the caller pushes them to the running engine
(`veles.services.engine.apply_rules`), which is the API's job, not this module's: these functions
only touch the database, so they run inside the caller's transaction.

Functions take the caller's tenant session and tenant id (RLS confines the session on PostgreSQL;
the explicit tenant filter keeps SQLite as safe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import update
from sqlmodel import Session, col, select

from actors.alert_store import BUILT_IN, NOT_EVALUATED, built_ins_running, current_seq, engine_rule
from models.alerts import Alert, AlertKind, AlertRule, AlertState, Severity
from models.columns import utcnow
from veles.risk.alerts import FLOW_LABELS
from veles.services.audit import record
from veles.services.errors import Conflict, InvalidInput, NotFound, validated

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as screens and API clients see it."""

    id: int
    rule_id: int | None
    severity: Severity
    subject: str
    value: float
    message: str
    state: AlertState
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    created_at: datetime
    repeats: int  # raises the engine's cool-down folded into this alert (1: raised once)
    last_raised_at: datetime | None  # the latest of them; None when raised once
    seq: int | None  # the tenant's alert sequence number of the engine's latest event on it
    escalated_at: datetime | None  # when it was escalated by e-mail and SMS, unacknowledged

    @classmethod
    def of(cls, row: Alert) -> AlertView:
        """The view of a stored row."""
        assert row.id is not None
        return cls(row.id, row.rule_id, row.severity, row.subject, row.value, row.message, row.state,
                   row.acknowledged_by, row.acknowledged_at, row.resolved_at, row.created_at, row.repeats,
                   row.last_raised_at, row.seq, row.escalated_at)


class AlertFilter(BaseModel):
    """Which alerts to list: by state, severity and creation time, newest first, one page; or,
    with `after_seq`, the alerts the engine changed after that sequence number, in its order."""

    model_config = ConfigDict(extra="forbid")

    state: AlertState | None = None
    severity: Severity | None = None
    since: datetime | None = Field(default=None, description="Only alerts created at or after this time.")
    after_seq: int | None = Field(default=None, ge=0, le=2**63 - 1, description=(
        "Only alerts whose latest engine event is numbered after this, oldest event first: the "
        "reload of a client that saw a gap in the `seq` of the alert events it receives."))
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


def alert_seq(db: Session, tenant_id: int) -> int:
    """The tenant's last alert sequence number. Read it before the alerts it should cover (as the
    API does): alerts changed in between only carry higher numbers, which a client then applies."""
    return current_seq(db, tenant_id)


def list_alerts(
    db: Session, tenant_id: int, query: AlertFilter | Mapping[str, Any] | None = None
) -> list[AlertView]:
    """The tenant's alerts matching `query`, newest first (by `seq`, oldest first, with `after_seq`)."""
    q = validated(AlertFilter, query or {})
    statement = select(Alert).where(Alert.tenant_id == tenant_id)
    if q.after_seq is not None:
        statement = statement.where(col(Alert.seq) > q.after_seq).order_by(col(Alert.seq))
    if q.state is not None:
        statement = statement.where(Alert.state == q.state)
    if q.severity is not None:
        statement = statement.where(Alert.severity == q.severity)
    if q.since is not None:
        statement = statement.where(col(Alert.created_at) >= q.since)
    if q.after_seq is None:
        statement = statement.order_by(col(Alert.created_at).desc(), col(Alert.id).desc())
    statement = statement.offset(q.offset).limit(q.limit)
    return [AlertView.of(row) for row in db.exec(statement).all()]


def _alert(db: Session, tenant_id: int, alert_id: int) -> Alert:
    row = db.exec(select(Alert).where(Alert.tenant_id == tenant_id, Alert.id == alert_id)).first()
    if row is None:
        raise NotFound(f"No alert {alert_id}.")
    return row


def get_alert(db: Session, tenant_id: int, alert_id: int) -> AlertView:
    """One alert of the tenant; NotFound otherwise."""
    return AlertView.of(_alert(db, tenant_id, alert_id))


def acknowledge(db: Session, tenant_id: int, alert_id: int, user_id: int) -> AlertView:
    """Mark an open alert acknowledged by `user_id` now. Acknowledging it again changes nothing
    (the first person keeps the credit); a resolved alert is a Conflict."""
    row = _alert(db, tenant_id, alert_id)
    if row.state is AlertState.RESOLVED:
        raise Conflict(f"Alert {alert_id} is already resolved.")
    if row.state is AlertState.OPEN:
        row.state, row.acknowledged_by, row.acknowledged_at = AlertState.ACKNOWLEDGED, user_id, utcnow()
        db.add(row)
        record(db, "alert.acknowledge", tenant_id=tenant_id, actor_user_id=user_id,
               target=f"alert:{alert_id}")
        db.flush()
    return AlertView.of(row)


def resolve(db: Session, tenant_id: int, alert_id: int, user_id: int) -> AlertView:
    """Mark an alert resolved now; resolving a resolved alert changes nothing."""
    row = _alert(db, tenant_id, alert_id)
    if row.state is not AlertState.RESOLVED:
        now = utcnow()
        if row.acknowledged_by is None:
            row.acknowledged_by, row.acknowledged_at = user_id, now
        row.state, row.resolved_at = AlertState.RESOLVED, now
        db.add(row)
        record(db, "alert.resolve", tenant_id=tenant_id, actor_user_id=user_id, target=f"alert:{alert_id}")
        db.flush()
    return AlertView.of(row)


# -- rules ------------------------------------------------------------------------------------


# The kinds a new rule may take: every one the live engine evaluates.
OFFERED_KINDS: tuple[AlertKind, ...] = tuple(AlertKind)
KIND_UNITS: dict[AlertKind, str] = {
    AlertKind.MARGIN_LEVEL: "margin level at or below this percent",
    AlertKind.EQUITY_DROP: "equity this percent or more below its peak (0-100)",
    AlertKind.EXPOSURE: "net exposure of a symbol at or above this many USD",
    AlertKind.FLOATING_LOSS: "an account's floating loss at or above this many USD",
    AlertKind.TOXIC_FLOW: "an account's toxicity score at or above this (0-100); the label field "
                          f"names a label to watch ({', '.join(FLOW_LABELS)}), empty for any",
}


def _known_label(label: str | None) -> str | None:
    """A toxic-flow label the engine knows, or None; anything else is refused naming the choices."""
    if label is not None and label not in FLOW_LABELS:
        raise ValueError(f"unknown label {label!r}: expected one of {', '.join(FLOW_LABELS)}")
    return label


def _offered(kind: AlertKind | None) -> AlertKind | None:
    if kind is not None and kind not in OFFERED_KINDS:
        raise ValueError(f"{kind.value} is {NOT_EVALUATED}; choose one of "
                         + ", ".join(k.value for k in OFFERED_KINDS))
    return kind


class RuleForm(BaseModel):
    """A new rule: what it watches, the threshold, how loud, and optionally one symbol."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    kind: AlertKind
    threshold: float = Field(gt=0, le=1e15)
    severity: Severity = Severity.WARNING
    symbol: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#-]+$")
    label: str | None = Field(default=None, max_length=32, description=(
        "toxic_flow rules only: the label watched (the rule's value is 0 while the account lacks "
        "it); empty for the score alone."))
    enabled: bool = True

    _kind = field_validator("kind")(_offered)
    _label = field_validator("label")(_known_label)


class RuleChange(BaseModel):
    """A partial change of a rule; only the fields given change (`symbol: null` or `label: null`
    clears it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    kind: AlertKind | None = None
    threshold: float | None = Field(default=None, gt=0, le=1e15)
    severity: Severity | None = None
    symbol: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#-]+$")
    label: str | None = Field(default=None, max_length=32)
    enabled: bool | None = None

    _kind = field_validator("kind")(_offered)
    _label = field_validator("label")(_known_label)


def _runnable(row: AlertRule) -> None:
    """InvalidInput naming the field when the engine would skip this rule (a drawdown over 100%,
    a symbol on an account rule): refused here rather than stored and never evaluated."""
    try:
        engine_rule("form", row.kind, row.threshold, row.severity, row.symbol, row.label)
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        raise InvalidInput(field, reason) from None


@dataclass(frozen=True, slots=True)
class RuleView:
    """A stored rule."""

    id: int
    kind: AlertKind
    threshold: float
    severity: Severity
    symbol: str | None
    label: str | None
    enabled: bool
    created_at: datetime
    evaluated: bool  # False: the engine cannot run this (older) rule; `status` says why
    status: str

    @classmethod
    def of(cls, row: AlertRule) -> RuleView:
        """The view of a stored row, saying whether the engine can evaluate it."""
        assert row.id is not None
        try:
            engine_rule(str(row.id), row.kind, row.threshold, row.severity, row.symbol, row.label)
        except ValueError as exc:
            evaluated, status = False, f"not evaluated ({exc})"
        else:
            evaluated, status = True, "evaluated" if row.enabled else "disabled"
        return cls(row.id, row.kind, row.threshold, row.severity, row.symbol, row.label, row.enabled,
                   row.created_at, evaluated, status)


@dataclass(frozen=True, slots=True)
class BuiltInView:
    """A rule the engine runs without a row: what it watches and whether it runs for this tenant."""

    id: str
    watches: str
    severity: Severity
    running: bool
    status: str  # why it runs or not, in words


def built_in_rules(db: Session, tenant_id: int) -> list[BuiltInView]:
    """The built-in rules and whether each runs beside the tenant's own (margin call and stop out
    always do; a default is replaced by a stored rule of its kind)."""
    kinds = db.exec(select(AlertRule.kind).where(AlertRule.tenant_id == tenant_id)).all()
    running = {b.rule.id for b in built_ins_running(AlertKind(k) for k in kinds)}
    views = []
    for b in BUILT_IN:
        if b.replaced_by is None:
            status = "always on"
        elif b.rule.id in running:
            status = f"on until you add a {b.replaced_by.value.replace('_', ' ')} rule"
        else:
            status = f"replaced by your {b.replaced_by.value.replace('_', ' ')} rules"
        views.append(BuiltInView(b.rule.id, b.watches, Severity(b.rule.severity.value), b.rule.id in running,
                                 status))
    return views


def _rule(db: Session, tenant_id: int, rule_id: int) -> AlertRule:
    row = db.exec(select(AlertRule).where(AlertRule.tenant_id == tenant_id, AlertRule.id == rule_id)).first()
    if row is None:
        raise NotFound(f"No alert rule {rule_id}.")
    return row


def list_rules(db: Session, tenant_id: int) -> list[RuleView]:
    """The tenant's rules, oldest first."""
    statement = select(AlertRule).where(AlertRule.tenant_id == tenant_id).order_by(col(AlertRule.id))
    rows = db.exec(statement).all()
    return [RuleView.of(row) for row in rows]


def create_rule(
    db: Session, tenant_id: int, form: RuleForm | Mapping[str, Any], *, actor: int | None = None
) -> RuleView:
    """Store a new rule; InvalidInput names a refused field. Audited: rules decide who is woken."""
    data = validated(RuleForm, form)
    row = AlertRule(tenant_id=tenant_id, **data.model_dump())
    _runnable(row)
    db.add(row)
    db.flush()
    record(db, "rule.create", tenant_id=tenant_id, actor_user_id=actor, target=f"rule:{row.id}",
           details=data.model_dump(mode="json"))
    return RuleView.of(row)


def update_rule(
    db: Session, tenant_id: int, rule_id: int, change: RuleChange | Mapping[str, Any], *,
    actor: int | None = None,
) -> RuleView:
    """Change the fields given (explicitly sent ones: `symbol: null` means every symbol, `label:
    null` any label)."""
    data = validated(RuleChange, change)
    row = _rule(db, tenant_id, rule_id)
    changes = {name: value for name, value in data.model_dump(exclude_unset=True).items()
               if value is not None or name in ("symbol", "label")}  # null for a required field: "leave it"
    after = AlertRule.model_validate(row.model_dump() | changes)
    if after.enabled:  # a rule stored before this check can still be switched off or removed
        _runnable(after)
    for name, value in changes.items():
        setattr(row, name, value)
    db.add(row)
    record(db, "rule.update", tenant_id=tenant_id, actor_user_id=actor, target=f"rule:{rule_id}",
           details=data.model_dump(mode="json", exclude_unset=True))
    db.flush()
    return RuleView.of(row)


def delete_rule(db: Session, tenant_id: int, rule_id: int, *, actor: int | None = None) -> None:
    """Remove a rule. Alerts it raised stay (their subject and message say what fired) and no
    longer point at it."""
    row = _rule(db, tenant_id, rule_id)
    db.exec(update(Alert).where(col(Alert.tenant_id) == tenant_id, col(Alert.rule_id) == rule_id)
            .values(rule_id=None))
    db.delete(row)
    record(db, "rule.delete", tenant_id=tenant_id, actor_user_id=actor, target=f"rule:{rule_id}")
    db.flush()
