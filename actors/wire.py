"""The JSON shape of what aggregators publish: book snapshots and diffs.

Kept in one place because both ends depend on it: the aggregator writes it, the web tier's
replica reads it. Plain dicts of numbers and strings so it crosses Redis and socket.io unchanged.
"""

from __future__ import annotations

from typing import Any

from veles.risk.account import AccountFigures
from veles.risk.alerts import Alert
from veles.risk.book import BookFigures

Row = dict[str, Any]

ACCOUNT_FIELDS = (
    "login",
    "group",
    "book",
    "currency",
    "balance",
    "credit",
    "equity",
    "profit",
    "margin",
    "free_margin",
    "margin_level",
    "state",
    "drawdown",
    "risk_score",
    "positions",
    "usd_rate",
    "leverage",
    "name",
    "country",
    "server",
)


def book_topic(tenant_id: int) -> str:
    """The bus topic a tenant's book diffs are published on."""
    return f"book:{tenant_id}"


def alert_topic(tenant_id: int) -> str:
    """The bus topic a tenant's alerts are published on, as they happen."""
    return f"alerts:{tenant_id}"


def alert_row(alert: Alert, row_id: int | None = None, seq: int | None = None,
              stored_at: float | None = None) -> Row:
    """An alert raised or cleared, as screens and integrations receive it. `id` is its `alert`
    row (a clear carries the id of the row it resolves), None when the engine has no database.
    `seq` is the tenant's alert sequence number of this event (one more than the event before;
    None for an alert the database did not store, or for the active list, which is state).
    `stored_at` is the wall-clock time the engine stored and sent it: `time_msc` is the feed's
    clock (the MT5 server's time, often hours from UTC), so delivery lag is measured from this."""
    return {
        "stored_at": stored_at,
        "id": row_id,
        "seq": seq,
        "rule_id": alert.rule_id,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "value": alert.value,
        "threshold": alert.threshold,
        "status": alert.status.value,
        "time_msc": alert.time_msc,
        "message": alert.message,
        "repeats": alert.repeats,  # raises folded into this one by the cool-down
        "first_msc": alert.first,  # the first of them: what identifies the alert
    }


def account_row(figures: AccountFigures) -> Row:
    """One account's on-screen figures."""
    return {name: getattr(figures, name) for name in ACCOUNT_FIELDS}


def book_totals(book: BookFigures) -> Row:
    """Tenant-wide totals in USD, with the book's margin level (percent, None without margin)."""
    margin_level = book.equity / book.margin * 100.0 if book.margin > 0 else None
    return {
        "accounts": book.accounts,
        "balance": book.balance,
        "credit": book.credit,
        "equity": book.equity,
        "profit": book.profit,
        "margin": book.margin,
        "free_margin": book.free_margin,
        "margin_level": margin_level,
        "margin_call": len(book.margin_call),
        "stop_out": len(book.stop_out),
        # Net exposure per symbol (largest USD first), for the portal's exposure chart and table.
        "exposure": [
            {"symbol": e.symbol, "lots": e.net_lots, "usd": e.usd_notional,
             "a_lots": e.a_net_lots, "a_usd": e.a_usd_notional,
             "b_lots": e.b_net_lots, "b_usd": e.b_usd_notional}
            for e in book.exposure
        ],
    }


def book_message(
    *,
    tenant_id: int,
    epoch: int,
    version: int,
    full: bool,
    book: BookFigures,
    accounts: list[Row],
    sent_at: float,
    published_at: float,
) -> Row:
    """A snapshot (`full`, every account) or a diff (only accounts changed since `version - 1`).

    `epoch` identifies one life of the aggregator: versions restart when it is restarted, so a
    consumer that sees a new epoch must reload the full snapshot.

    `sent_at` is when the newest price batch reflected here left the gateway, so any consumer can
    measure gateway-to-screen latency.
    """
    return {
        "tenant_id": tenant_id,
        "epoch": epoch,
        "version": version,
        "full": full,
        "totals": book_totals(book),
        "accounts": accounts,
        "sent_at": sent_at,
        "published_at": published_at,
    }


def book_message_problem(message: Row) -> str | None:
    """What makes a message on a book topic unusable (a field missing or of the wrong type), or
    None for one `book_message` could have made. Consumers skip such a message rather than apply
    half of it: only the aggregator publishes here, so anything else is a stray writer's junk."""
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    checks = {
        "full": isinstance(message.get("full"), bool),
        "epoch": whole(message.get("epoch")),
        "version": whole(message.get("version")),
        "totals": isinstance(message.get("totals"), dict),
        "accounts": isinstance(message.get("accounts"), list)
        and all(isinstance(row, dict) and whole(row.get("login")) for row in message["accounts"]),
        "sent_at": isinstance(message.get("sent_at"), int | float),
        "published_at": isinstance(message.get("published_at"), int | float),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    return f"{', '.join(wrong)} missing or of the wrong type" if wrong else None

