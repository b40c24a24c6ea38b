"""A tenant's alerts as database rows, and its alert rules from the database.

Each raise becomes an `alert` row (state open), each clear resolves that row (`resolved_at`), and
the row's id travels in the alert's bus message so the portal and the API can acknowledge it.
Because the open rows are the truth, a rebuilt aggregator reads them back into its AlertEngine's
active set: an alert already open is not raised again, and one whose cause goes away is resolved.

Rules. A tenant that has stored `alert_rule` rows gets its enabled ones; a tenant with none gets
`tenant_rules()`. A stored rule's engine id is its row id as text, so its alerts point at the row;
the built-in rules have word ids and raise alerts with no rule row (`rule_id` None). Every message
the AlertEngine writes ends with "(rule id)", which is how an open row of a built-in rule finds
its rule again after a restart.

Every function here blocks on the database; the aggregator runs them in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from models import alerts as rows
from models.columns import utcnow
from models.db import tenant_session
from veles.risk.alerts import Alert, AlertKind, AlertRule, AlertStatus, Severity, default_rules

# What each stored kind means to the engine. equity_drop thresholds are percent of peak equity
# (like margin level, in percent); the engine wants a fraction. floating_loss and toxic_flow have
# no evaluator in the engine yet: such rules are reported as skipped, never silently dropped.
_KINDS: Mapping[rows.AlertKind, AlertKind] = {
    rows.AlertKind.MARGIN_LEVEL: AlertKind.MARGIN_LEVEL,
    rows.AlertKind.EQUITY_DROP: AlertKind.DRAWDOWN,
    rows.AlertKind.EXPOSURE: AlertKind.SYMBOL_EXPOSURE,
}
_RULE_IN_MESSAGE = re.compile(r"\(([^()]+)\)$")


def tenant_rules() -> list[AlertRule]:
    """A tenant's alert rules until it stores its own: margin call and stop-out as each account's
    own group defines them (so money-mode and per-group levels are right), then the desk's
    defaults for drawdown, exposure per symbol and large deals."""
    per_account = [
        AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING),
        AlertRule("stop_out", AlertKind.ACCOUNT_STATE, 2, Severity.CRITICAL),
    ]
    desk = [r for r in default_rules(100.0, 50.0) if r.kind is not AlertKind.MARGIN_LEVEL]
    return per_account + desk


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules an engine runs, and the stored rules it could not run, each with why."""

    rules: tuple[AlertRule, ...]
    skipped: tuple[str, ...] = ()
    stored: bool = False  # True: from the tenant's rows; False: the built-in defaults


def rule_set(stored: Sequence[rows.AlertRule]) -> RuleSet:
    """The engine rules for a tenant's stored rows (the defaults when it has none).

    A row the engine cannot run is skipped with a reason naming the rule and the field.
    """
    if not stored:
        return RuleSet(tuple(tenant_rules()))
    rules: list[AlertRule] = []
    skipped: list[str] = []
    for row in stored:
        if not row.enabled:
            continue
        kind = _KINDS.get(rows.AlertKind(row.kind))
        if kind is None:
            skipped.append(f"rule {row.id}: kind: {row.kind} is not evaluated by the live engine")
            continue
        threshold = row.threshold / 100.0 if kind is AlertKind.DRAWDOWN else row.threshold
        try:
            rules.append(AlertRule(str(row.id), kind, threshold, Severity(row.severity), row.symbol))
        except ValueError as exc:
            skipped.append(f"rule {row.id}: {exc}")
    return RuleSet(tuple(rules), tuple(skipped), stored=True)


def load_rules(url: str, tenant_id: int) -> RuleSet:
    """The tenant's rules as stored now."""
    with tenant_session(url, tenant_id) as db:
        statement = select(rows.AlertRule).where(rows.AlertRule.tenant_id == tenant_id)
        return rule_set(db.exec(statement.order_by(col(rows.AlertRule.id))).all())


def rule_row_id(rule_id: str) -> int | None:
    """The `alert_rule` row behind an engine rule id; None for a built-in rule."""
    return int(rule_id) if rule_id.isdigit() else None


@dataclass
class AlertStore:
    """Writes one tenant's alerts and remembers the row of each raised one, by (rule, subject)."""

    url: str
    tenant_id: int
    open_rows: dict[tuple[str, str], int] = field(default_factory=dict)

    def record(self, alerts: Sequence[Alert]) -> list[int | None]:
        """Store raises as open rows and resolve the rows of clears, in one transaction; the row id
        of each alert, in order (None for a clear whose row is unknown)."""
        ids: list[int | None] = []
        now = utcnow()
        with tenant_session(self.url, self.tenant_id) as db:
            for alert in alerts:
                key = (alert.rule_id, alert.subject)
                if alert.status is AlertStatus.RAISED:
                    row = rows.Alert(
                        tenant_id=self.tenant_id, rule_id=rule_row_id(alert.rule_id),
                        severity=rows.Severity(alert.severity.value), subject=alert.subject[:120],
                        value=alert.value if alert.value is not None else float("nan"),
                        message=alert.message[:2000],
                    )
                    db.add(row)
                    db.flush()
                    ids.append(row.id)
                    if alert.kind is not AlertKind.LARGE_DEAL:  # an event: nothing will clear it
                        assert row.id is not None
                        self.open_rows[key] = row.id
                else:
                    row_id = self.open_rows.pop(key, None)
                    if row_id is not None:
                        self._resolve(db, [row_id], now)
                    ids.append(row_id)
        return ids

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
                }
            self._resolve(db, orphans, utcnow())
        return list(exported.values())

    def _resolve(self, db: Any, row_ids: Sequence[int], now: Any) -> None:
        if not row_ids:
            return
        db.exec(
            update(rows.Alert)
            .where(col(rows.Alert.tenant_id) == self.tenant_id, col(rows.Alert.id).in_(row_ids),
                   col(rows.Alert.state) != rows.AlertState.RESOLVED)
            .values(state=rows.AlertState.RESOLVED, resolved_at=now)
        )


def _engine_rule_id(row: rows.Alert) -> str:
    """The engine rule that raised a stored alert: its rule row, else the id its message ends with."""
    if row.rule_id is not None:
        return str(row.rule_id)
    found = _RULE_IN_MESSAGE.search(row.message)
    return found.group(1) if found else ""
