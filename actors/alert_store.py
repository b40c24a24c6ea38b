"""A tenant's alerts as database rows, and its alert rules from the database.

Each raise becomes an `alert` row (state open), each clear resolves that row (`resolved_at`), and
the row's id travels in the alert's bus message so the portal and the API can acknowledge it.
Because the open rows are the truth, a rebuilt aggregator reads them back into its AlertEngine's
active set: an alert already open is not raised again, and one whose cause goes away is resolved.

Rules. The built-in margin-call and stop-out rules always run: they follow each account's own MT5
group levels, so no tenant rule can leave an account in margin call unreported. The desk's
defaults (drawdown, exposure per symbol, large deals) run too, except that a stored rule of the
same kind (enabled or not) takes the place of that default. The tenant's enabled stored rules run
beside them (`BUILT_IN`, `rule_set`). A stored rule's engine id is its row id as text, so its
alerts point at the row; the built-in rules have word ids and raise alerts with no rule row
(`rule_id` None); every row names its engine rule (`engine_rule`), which is how an open row of a
built-in rule finds its rule again after a restart (rows written before that column existed end
their message with "(rule id)", which is read as a fallback).

Order. Every raise, repeat and clear stored takes the tenant's next alert sequence number
(`take_seqs`: the `alert_seq` row of `tenant_counter`, moved in the same transaction that writes
the rows, so numbers are gap-free and never shared), and the row keeps the number of its latest
event. The numbers travel in the bus messages; clients apply alerts in that order and reload from
the database when one is missing (`veles.services.alert_order`). The counter lives in the
database, so it goes on where it was after the aggregator restarts.

Repeats. A raise the AlertEngine folded into an earlier alert (its cool-down, `repeats` > 1)
reopens that alert's row with the latest value, message and count instead of adding a row, so a
flapping account is one row (and one report line) with a count.

Every function here blocks on the database; the aggregator runs them in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models import alerts as rows
from models.columns import utcnow
from models.db import tenant_session
from veles.risk.alerts import Alert, AlertKind, AlertRule, AlertStatus, Severity, default_rules

# What each stored kind means to the engine. equity_drop thresholds are percent of peak equity
# (like margin level, in percent); the engine wants a fraction. floating_loss thresholds are USD.
# toxic_flow thresholds are a toxicity score 0-100; such a rule may name the label it watches
# (its `label` column; None: any).
_KINDS: Mapping[rows.AlertKind, AlertKind] = {
    rows.AlertKind.MARGIN_LEVEL: AlertKind.MARGIN_LEVEL,
    rows.AlertKind.EQUITY_DROP: AlertKind.DRAWDOWN,
    rows.AlertKind.EXPOSURE: AlertKind.SYMBOL_EXPOSURE,
    rows.AlertKind.FLOATING_LOSS: AlertKind.FLOATING_LOSS,
    rows.AlertKind.TOXIC_FLOW: AlertKind.TOXIC_FLOW,
}
NOT_EVALUATED = "not evaluated by the engine"


def engine_rule(
    rule_id: str, kind: rows.AlertKind, threshold: float, severity: rows.Severity, symbol: str | None,
    label: str | None = None,
) -> AlertRule:
    """The engine rule of a stored rule's fields; ValueError starting with the refused field's
    name ("kind: ...", "threshold: ...", "symbol: ...", "label: ...") when the engine could not run
    it. The form and the API refuse such a rule with this same check, so nothing stored is
    silently skipped."""
    engine_kind = _KINDS.get(rows.AlertKind(kind))
    if engine_kind is None:
        raise ValueError(f"kind: {kind} is {NOT_EVALUATED}")
    value = threshold / 100.0 if engine_kind is AlertKind.DRAWDOWN else threshold
    try:
        return AlertRule(rule_id, engine_kind, value, Severity(severity), symbol, label=label)
    except ValueError as exc:
        if engine_kind is AlertKind.DRAWDOWN and str(exc).startswith("threshold:"):
            raise ValueError(f"threshold: equity_drop is a percent of peak equity, 0 to 100, "
                             f"got {threshold!r}") from None
        raise


_RULE_IN_MESSAGE = re.compile(r"\(([^()]+)\)$")


@dataclass(frozen=True, slots=True)
class BuiltIn:
    """A rule every tenant runs without storing it, and what it watches in a desk's words.

    `replaced_by`: a stored rule of this kind takes the default's place; None: it always runs."""

    rule: AlertRule
    watches: str
    replaced_by: rows.AlertKind | None = None


def _desk(rule_id: str) -> AlertRule:
    return next(r for r in default_rules(100.0, 50.0) if r.id == rule_id)


BUILT_IN: tuple[BuiltIn, ...] = (
    BuiltIn(AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING),
            "An account reaching the margin-call level of its own MT5 group (percent or money mode)"),
    BuiltIn(AlertRule("stop_out", AlertKind.ACCOUNT_STATE, 2, Severity.CRITICAL),
            "An account reaching the stop-out level of its own MT5 group"),
    BuiltIn(_desk("drawdown_30"), "An account's equity 30% or more below its peak",
            rows.AlertKind.EQUITY_DROP),
    BuiltIn(_desk("symbol_exposure_5m"), "The book's net exposure in one symbol at $5,000,000 or more",
            rows.AlertKind.EXPOSURE),
    BuiltIn(_desk("large_deal_50"), "A single trade deal of 50 lots or more"),
)


def tenant_rules() -> list[AlertRule]:
    """Every built-in rule: what a tenant with no stored rules runs (and every engine meanwhile)."""
    return [built_in.rule for built_in in BUILT_IN]


def built_ins_running(stored_kinds: Iterable[rows.AlertKind]) -> list[BuiltIn]:
    """The built-in rules that run beside stored rules of `stored_kinds`."""
    kinds = set(stored_kinds)
    return [b for b in BUILT_IN if b.replaced_by is None or b.replaced_by not in kinds]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules an engine runs, and the stored rules it could not run, each with why."""

    rules: tuple[AlertRule, ...]
    skipped: tuple[str, ...] = ()
    stored: bool = False  # True: the tenant has rows of its own (they run beside the built-ins)


def rule_set(stored: Sequence[rows.AlertRule]) -> RuleSet:
    """The engine rules for a tenant's stored rows: the built-ins (`built_ins_running`), then
    every enabled row. A row the engine cannot run is skipped with a reason naming the rule and
    the field."""
    rules = [b.rule for b in built_ins_running(rows.AlertKind(row.kind) for row in stored)]
    skipped: list[str] = []
    for row in stored:
        if not row.enabled:
            continue
        try:
            rules.append(engine_rule(str(row.id), row.kind, row.threshold, row.severity, row.symbol,
                                     row.label))
        except ValueError as exc:
            skipped.append(f"rule {row.id}: {exc}")
    return RuleSet(tuple(rules), tuple(skipped), stored=bool(stored))


def load_rules(url: str, tenant_id: int) -> RuleSet:
    """The tenant's rules as stored now."""
    with tenant_session(url, tenant_id) as db:
        statement = select(rows.AlertRule).where(rows.AlertRule.tenant_id == tenant_id)
        return rule_set(db.exec(statement.order_by(col(rows.AlertRule.id))).all())


def rule_row_id(rule_id: str) -> int | None:
    """The `alert_rule` row behind an engine rule id; None for a built-in rule."""
    return int(rule_id) if rule_id.isdigit() else None


ALERT_SEQ = "alert_seq"  # the `tenant_counter` that numbers a tenant's alert events


def take_seqs(db: Session, tenant_id: int, count: int) -> int:
    """Reserve `count` consecutive alert sequence numbers of the tenant in `db`'s transaction; the
    first of them. The counter row stays locked until the transaction ends, so concurrent writers
    are numbered in commit order, and a rollback gives the numbers back (no gap)."""
    counter = rows.TenantCounter
    bump = (update(counter)
            .where(col(counter.tenant_id) == tenant_id, col(counter.name) == ALERT_SEQ)
            .values(value=col(counter.value) + count)
            .returning(col(counter.value)))
    last = db.execute(bump).scalar_one_or_none()
    if last is None:  # the tenant's first alert: make its counter (a concurrent maker wins harmlessly)
        dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
        db.execute(dialect.insert(counter).values(tenant_id=tenant_id, name=ALERT_SEQ, value=0)
                   .on_conflict_do_nothing())
        last = db.execute(bump).scalar_one()
    return int(last) - count + 1


def current_seq(db: Session, tenant_id: int) -> int:
    """The tenant's last alert sequence number handed out (0 before the first). Read it before
    the rows it should cover: rows changed later only carry higher numbers."""
    value = db.exec(select(rows.TenantCounter.value).where(
        rows.TenantCounter.tenant_id == tenant_id, rows.TenantCounter.name == ALERT_SEQ)).first()
    return int(value or 0)


_COOLING_ROWS = 10_000  # rows of cleared alerts a repeat may reopen, at most


@dataclass
class AlertStore:
    """Writes one tenant's alerts and remembers the row of each raised one, by (rule, subject),
    and of each recently cleared one (a repeat within the cool-down reopens it)."""

    url: str
    tenant_id: int
    open_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    cleared_rows: dict[tuple[str, str], int] = field(default_factory=dict)

    def record(self, alerts: Sequence[Alert]) -> list[tuple[int | None, int]]:
        """Store raises as open rows and resolve the rows of clears, in one transaction; the row id
        (None for a clear whose row is unknown) and the sequence number of each alert, in order."""
        ids: list[tuple[int | None, int]] = []
        now = utcnow()
        with tenant_session(self.url, self.tenant_id) as db:
            first = take_seqs(db, self.tenant_id, len(alerts)) if alerts else 0
            for seq, alert in enumerate(alerts, start=first):
                key = (alert.rule_id, alert.subject)
                value = alert.value if alert.value is not None else float("nan")
                if alert.status is AlertStatus.RAISED:
                    reopened = self._reopen(db, key, alert, value, now, seq) if alert.repeats > 1 else None
                    if reopened is not None:
                        ids.append((reopened, seq))
                        self.open_rows[key] = reopened
                        continue
                    row = rows.Alert(
                        tenant_id=self.tenant_id, rule_id=rule_row_id(alert.rule_id),
                        severity=rows.Severity(alert.severity.value), subject=alert.subject[:120],
                        value=value, message=alert.message[:2000], engine_rule=alert.rule_id[:64],
                        repeats=alert.repeats, last_raised_at=now if alert.repeats > 1 else None,
                        seq=seq, first_msc=alert.first,
                    )
                    db.add(row)
                    db.flush()
                    ids.append((row.id, seq))
                    if alert.kind is not AlertKind.LARGE_DEAL:  # an event: nothing will clear it
                        assert row.id is not None
                        self.open_rows[key] = row.id
                else:
                    row_id = self.open_rows.pop(key, None)
                    if row_id is not None:
                        self._resolve(db, [row_id], now, seq)
                        self._remember_cleared(key, row_id)
                    ids.append((row_id, seq))
        return ids

    def current_seq(self) -> int:
        """The tenant's last alert sequence number (blocks on the database)."""
        with tenant_session(self.url, self.tenant_id) as db:
            return current_seq(db, self.tenant_id)

    def _reopen(
        self, db: Any, key: tuple[str, str], alert: Alert, value: float, now: Any, seq: int
    ) -> int | None:
        """Fold a repeat into the row of the alert it repeats: open again (acknowledged stays
        acknowledged), the latest value and message, the count. None when that row is unknown
        (the aggregator restarted meanwhile): the caller adds a row."""
        row_id = self.cleared_rows.pop(key, None)
        if row_id is None:
            return None
        row = db.get(rows.Alert, row_id)
        if row is None or row.tenant_id != self.tenant_id:
            return None
        row.state = rows.AlertState.ACKNOWLEDGED if row.acknowledged_by is not None else rows.AlertState.OPEN
        row.resolved_at = None
        row.value, row.message = value, alert.message[:2000]
        row.repeats, row.last_raised_at, row.seq = alert.repeats, now, seq
        db.add(row)
        return row_id

    def _remember_cleared(self, key: tuple[str, str], row_id: int) -> None:
        self.cleared_rows.pop(key, None)
        self.cleared_rows[key] = row_id
        while len(self.cleared_rows) > _COOLING_ROWS:
            del self.cleared_rows[next(iter(self.cleared_rows))]

    def resolve(self, keys: Iterable[tuple[str, str]]) -> None:
        """Resolve the open rows of alerts nothing can clear any more (their rule was removed)."""
        row_ids = [row_id for key in keys if (row_id := self.open_rows.pop(key, None)) is not None]
        if row_ids:
            with tenant_session(self.url, self.tenant_id) as db:
                self._resolve(db, row_ids, utcnow())

    def load_open(self, rules: Iterable[AlertRule]) -> list[dict[str, Any]]:
        """Read the tenant's unresolved alerts back as an AlertEngine export of `rules`.

        Rows whose rule is gone (or is a large-deal rule: those are events, left for people to
        handle) are not restored; the former are resolved, since nothing could clear them, and so
        are older duplicates of a (rule, subject) that is open twice.
        """
        by_id = {rule.id: rule for rule in rules}
        exported: dict[tuple[str, str], dict[str, Any]] = {}
        orphans: list[int] = []
        self.open_rows.clear()
        with tenant_session(self.url, self.tenant_id) as db:
            statement = select(rows.Alert).where(
                rows.Alert.tenant_id == self.tenant_id, rows.Alert.state != rows.AlertState.RESOLVED
            )
            for row in db.exec(statement.order_by(col(rows.Alert.id))).all():
                assert row.id is not None
                rule = by_id.get(_engine_rule_id(row))
                if rule is not None and rule.kind is AlertKind.LARGE_DEAL:
                    continue
                if rule is None:
                    orphans.append(row.id)
                    continue
                key = (rule.id, row.subject)
                if key in self.open_rows:
                    orphans.append(self.open_rows[key])
                self.open_rows[key] = row.id
                exported[key] = {
                    "rule_id": rule.id, "kind": rule.kind.value, "severity": row.severity.value,
                    "subject": row.subject, "value": row.value, "threshold": rule.threshold,
                    "status": AlertStatus.RAISED.value,
                    "time_msc": int(row.created_at.timestamp() * 1000), "message": row.message,
                    "repeats": row.repeats,
                }
            self._resolve(db, orphans, utcnow())
        return list(exported.values())

    def _resolve(self, db: Any, row_ids: Sequence[int], now: Any, seq: int | None = None) -> None:
        """Resolve rows; `seq`: the number of the clear event that resolves this one row (rows
        resolved without an event, their rule or account gone, keep their number)."""
        if not row_ids:
            return
        values: dict[str, Any] = {"state": rows.AlertState.RESOLVED, "resolved_at": now}
        if seq is not None:
            values["seq"] = seq
        db.exec(
            update(rows.Alert)
            .where(col(rows.Alert.tenant_id) == self.tenant_id, col(rows.Alert.id).in_(row_ids),
                   col(rows.Alert.state) != rows.AlertState.RESOLVED)
            .values(**values)
        )


def _engine_rule_id(row: rows.Alert) -> str:
    """The engine rule that raised a stored alert: as recorded, else its rule row, else (rows
    older than `engine_rule`) the id its message ends with."""
    if row.engine_rule:
        return row.engine_rule
    if row.rule_id is not None:
        return str(row.rule_id)
    found = _RULE_IN_MESSAGE.search(row.message)
    return found.group(1) if found else ""
