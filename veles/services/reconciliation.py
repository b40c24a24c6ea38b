"""How each of a tenant's connections agrees with its MT5 server's own figures, for the portal's
connections page: read from the tenant's engine stats (its supervisor's reconciliation views,
`veles/mt5/reconciliation.py`), never from the server itself, so a page load costs one Redis read
(or one Ray call) whatever the servers do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actors.feeds import stored_connection_id
from veles.config import Settings
from veles.mt5.reconciliation import LABELS
from veles.mt5.webapi.accounts import LEVEL_DIGITS
from veles.services.engine_metrics import tenant_engine_stats

DASH = "—"


@dataclass(frozen=True, slots=True)
class ConnectionReconciliation:
    """One connection's reconciliation as a person reads it.

    `state` is "unchecked" (no check yet, or the engine is not reachable), "ok", "failed" (the
    last server read failed: `summary` says why) or "drifting". `drifts` has one row per figure of
    each drifting account: login, figure, Veles' value (veles), the server's (mt5), the difference."""

    state: str
    summary: str
    drifts: list[dict[str, str]] = field(default_factory=list)


UNCHECKED = ConnectionReconciliation("unchecked", "not checked yet")


async def reconciliations(settings: Settings, tenant_id: int) -> dict[int, ConnectionReconciliation]:
    """Each stored connection's reconciliation, by connection row id (only those the engine
    checks; the others read as `UNCHECKED`)."""
    stats = await tenant_engine_stats(settings, tenant_id)
    views = {view["connection_id"]: view for view in (stats or {}).get("reconciliation", [])}
    out = {}
    for cid, view in views.items():
        row = cid.removeprefix("conn-")
        if row.isdigit() and stored_connection_id(int(row)) == cid:
            out[int(row)] = of_view(view)
    return out


def of_view(view: dict[str, Any]) -> ConnectionReconciliation:
    """A supervisor's reconciliation view in words."""
    if not view["checks"]:
        return UNCHECKED
    at = _clock(view["last_check"])
    if view["last_error"]:
        return ConnectionReconciliation("failed", f"check failed at {at}: {view['last_error']}")
    if not view["drifting"]:
        return ConnectionReconciliation("ok", f"0 of {view['compared']} accounts drifting (checked {at})")
    confirmed = [a for a in view["accounts"] if a["confirmed"]]
    worst = f"; worst {_units(confirmed[0]['max_drift_minor'], confirmed[0]['digits'])} " \
            f"{confirmed[0]['currency']}" if confirmed else ""
    return ConnectionReconciliation(
        "drifting", f"{view['drifting']} of {view['compared']} accounts drifting{worst} (checked {at})",
        [row for account in confirmed for row in _rows(account)])


def _rows(account: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for name, figure in account["fields"].items():
        level = name == "margin_level"
        digits = LEVEL_DIGITS if level else account["digits"]
        unit = "%" if level else f" {account['currency']}"
        rows.append({"login": str(account["login"]), "figure": LABELS.get(name, name),
                     "veles": _units(figure["veles"], digits) + unit,
                     "mt5": _units(figure["server"], digits) + unit,
                     "drift": _units(figure["drift"], digits) + unit})
    return rows


def _units(units: int | None, digits: int) -> str:
    return "none" if units is None else f"{units / 10**digits:,.{digits}f}"


def _clock(moment: float | None) -> str:
    return DASH if moment is None else datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
