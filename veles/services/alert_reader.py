"""Each user as a reader of the tenant's alerts: what is unread, marking it read, and whether
critical alerts may show a desktop notification.

Unread: the tenant's open alerts (not acknowledged, not resolved) whose latest raise is numbered
after the user's read mark (`AlertReader.read_seq`, an alert sequence number). So the count grows
when an alert is raised (or a cleared one comes back), and falls when anyone acknowledges or
resolves one, or the engine clears it; "Mark all read" moves the mark to the tenant's last number.
A user without a row has read nothing and has not opted in to desktop notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from actors.alert_store import current_seq
from models.alerts import Alert, AlertReader, AlertState, Severity
from models.columns import utcnow
from veles.services.errors import NotFound

CRITICAL_SHOWN = 20  # new critical alerts one look hands a tab, at most (a storm is one sound)


@dataclass(frozen=True, slots=True)
class ReaderView:
    """One user's unread count and settings, with the tenant's last alert number."""

    unread: int
    read_seq: int
    seq: int
    desktop_notifications: bool


def _row(db: Session, tenant_id: int, user_id: int) -> AlertReader | None:
    return db.exec(select(AlertReader).where(
        AlertReader.tenant_id == tenant_id, AlertReader.user_id == user_id)).first()


def _own_row(db: Session, tenant_id: int, user_id: int) -> AlertReader:
    """The user's row, made if missing (a concurrent first maker wins; its row is used)."""
    row = _row(db, tenant_id, user_id)
    if row is not None:
        return row
    try:
        with db.begin_nested():
            row = AlertReader(tenant_id=tenant_id, user_id=user_id)
            db.add(row)
            db.flush()
            return row
    except IntegrityError:
        found = _row(db, tenant_id, user_id)
        if found is None:  # not a concurrent maker: the user is not in this tenant
            raise NotFound(f"No user {user_id} in your tenant.") from None
        return found


def reader(db: Session, tenant_id: int, user_id: int) -> ReaderView:
    """The user's unread count and settings now."""
    seq = current_seq(db, tenant_id)  # first: alerts raised meanwhile only carry higher numbers
    row = _row(db, tenant_id, user_id)
    read_seq = row.read_seq if row is not None else 0
    unread = db.exec(select(func.count()).select_from(Alert).where(
        Alert.tenant_id == tenant_id, Alert.state == AlertState.OPEN, col(Alert.seq) > read_seq)).one()
    return ReaderView(int(unread), read_seq, seq, bool(row is not None and row.desktop_notifications))


def mark_read(db: Session, tenant_id: int, user_id: int) -> ReaderView:
    """Every alert raised so far is read by this user."""
    row = _own_row(db, tenant_id, user_id)
    row.read_seq, row.updated_at = max(row.read_seq, current_seq(db, tenant_id)), utcnow()
    db.add(row)
    db.flush()
    return reader(db, tenant_id, user_id)


def set_desktop_notifications(db: Session, tenant_id: int, user_id: int, enabled: bool) -> ReaderView:
    """Opt in to (or out of) desktop notifications of critical alerts; the browser's permission
    is the browser's to give, asked when the user opts in."""
    row = _own_row(db, tenant_id, user_id)
    row.desktop_notifications, row.updated_at = bool(enabled), utcnow()
    db.add(row)
    db.flush()
    return reader(db, tenant_id, user_id)


@dataclass(frozen=True, slots=True)
class CriticalAlert:
    """A newly raised critical alert, for a tab's sound and desktop notification."""

    id: int
    seq: int
    message: str


def critical_since(db: Session, tenant_id: int, after_seq: int) -> list[CriticalAlert]:
    """Open critical alerts whose latest raise is numbered after `after_seq`, in that order."""
    statement = (select(Alert).where(
        Alert.tenant_id == tenant_id, Alert.severity == Severity.CRITICAL, Alert.state == AlertState.OPEN,
        col(Alert.seq) > after_seq).order_by(col(Alert.seq)).limit(CRITICAL_SHOWN))
    rows = db.exec(statement).all()
    return [CriticalAlert(int(row.id or 0), int(row.seq or 0), row.message) for row in rows]
