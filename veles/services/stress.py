"""Stress tests of a tenant's live book, and the scenarios its dealers save.

The book comes from the tenant's own supervisor (`book_parts`: every connection's symbols, latest
quotes and each live account's current snapshot); the pure engine (`veles.risk.stress`) shocks it
and runs MT5's stop-out cascade in a worker thread, never on the caller's event loop. Portal and
REST API call the same functions, so their figures are the same. Money stays in integer minor
units of each deposit currency, totals per currency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ray.exceptions import RayError, RayTaskError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from actors.tenant_host import TenantNotHosted
from models.db import tenant_session
from models.stress import StressScenario
from veles.config import Settings
from veles.risk.stress import BookPart, ScenarioError, StressResult, book_symbols, parse_scenario, stress_book
from veles.services.errors import Conflict, InvalidInput, NotFound
from veles.services.ray_runtime import tenant_actor

log = logging.getLogger(__name__)
MAX_SCENARIO = 500  # characters of a scenario (the column's length)
MAX_NAME = 80
MAX_SAVED = 100  # saved scenarios per tenant: a list a dealer can read, not a store


class EngineNotRunning(ConnectionError):
    """The tenant's engine does not run (no MT5 connection) or holds no account; safe to show."""


class EngineUnreachable(EngineNotRunning):
    """The engine runs (or should) but did not answer; safe to show, worth retrying."""


@dataclass(frozen=True)
class SavedScenario:
    """A saved scenario as callers see it."""

    id: int
    name: str
    scenario: str
    created_at: str


def check_scenario_text(text: object) -> str:
    """The scenario as typed, trimmed; InvalidInput for an empty or overlong one (what the symbols
    decide comes later, from the book)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("scenario", "empty scenario: write e.g. 'XAUUSD -3%' or 'USD +2% against all'")
    if len(text) > MAX_SCENARIO:
        raise InvalidInput("scenario", f"at most {MAX_SCENARIO} characters, got {len(text)}")
    return text.strip()


async def live_parts(settings: Settings, tenant_id: int) -> list[BookPart]:
    """The tenant's live book, per connection, from its supervisor (Ray look-ups off the loop)."""
    not_running = EngineNotRunning("The risk engine is not running for this broker: add an MT5 connection "
                                   "first (or wait for it to start).")
    try:
        supervisor = await tenant_actor(settings, tenant_id, "supervisor")
        if supervisor is None:  # no connection, so no book
            raise not_running
        parts: list[BookPart] = await supervisor.book_parts.remote()
    except EngineNotRunning:  # a ConnectionError too: not to be taken for an unreachable engine
        raise
    except (ValueError, TenantNotHosted):  # let go meanwhile (its last connection went)
        raise not_running from None
    except RayTaskError as exc:  # the call reached the tenant's engine and failed there
        if isinstance(exc.cause, TenantNotHosted | ValueError):
            raise not_running from None
        log.error("tenant %s: book_parts failed: %r", tenant_id, exc.cause)
        raise EngineUnreachable("The risk engine could not read the book; try again shortly.") from exc
    except (ConnectionError, RayError) as exc:
        log.error("tenant %s: engine not reached: %r", tenant_id, exc)
        raise EngineUnreachable("The risk engine cannot be reached; try again shortly.") from exc
    if not any(part.snapshots for part in parts):
        raise EngineNotRunning("The book has no accounts yet: nothing to stress.")
    return parts


def _money_rows(result: StressResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for a in result.stopped_out:
        rows.append({
            "login": a.login, "group": a.group, "book": a.book, "currency": a.currency,
            "equity_before_minor": a.equity_before, "equity_after_minor": a.equity_after,
            "balance_after_minor": a.balance_after, "absorbed_minor": a.absorbed,
            "margin_level_before": a.margin_level_before, "margin_level_after": a.margin_level_after,
            "closed": [
                {"ticket": c.ticket, "symbol": c.symbol, "side": c.side, "volume": c.volume,
                 "price": c.price, "booked_minor": c.booked, "margin_level": c.margin_level_before}
                for c in a.closed
            ],
        })
    rows.sort(key=lambda r: (-r["absorbed_minor"], r["equity_after_minor"] - r["equity_before_minor"]))
    return rows


def stress_view(result: StressResult, parts: Sequence[BookPart]) -> dict[str, Any]:
    """What the portal and the API show of a stress: the engine's JSON summary, each stopped-out
    account with the positions closed (most absorbed first), and what was left out."""
    return {
        **result.to_json(),
        "stopped_out_accounts": _money_rows(result),
        "left_out": sum(part.left_out for part in parts),
        "connections": len(parts),
        "quotes_msc": max((q.time_msc for part in parts for q in part.quotes.values()), default=0),
    }


def stress_parts(parts: Sequence[BookPart], scenario: str) -> dict[str, Any]:
    """Parse `scenario` against the book's symbols and stress it; InvalidInput names the bad part."""
    try:
        shocks = parse_scenario(check_scenario_text(scenario), book_symbols(parts))
    except ScenarioError as exc:
        raise InvalidInput("scenario", str(exc)) from None
    return stress_view(stress_book(parts, shocks), parts)


async def stress_live(settings: Settings, tenant_id: int, scenario: str) -> dict[str, Any]:
    """Stress the tenant's live book now (the computation in a worker thread)."""
    check_scenario_text(scenario)
    parts = await live_parts(settings, tenant_id)
    return await asyncio.to_thread(stress_parts, parts, scenario)


# -- saved scenarios -------------------------------------------------------------------------------

def _saved(row: StressScenario) -> SavedScenario:
    assert row.id is not None
    return SavedScenario(row.id, row.name, row.scenario, row.created_at.isoformat())


def list_scenarios(url: str, tenant_id: int) -> list[SavedScenario]:
    """The tenant's saved scenarios by name."""
    with tenant_session(url, tenant_id) as session:
        rows = session.exec(select(StressScenario).where(col(StressScenario.tenant_id) == tenant_id)
                            .order_by(col(StressScenario.name)))
        return [_saved(row) for row in rows]


def save_scenario(url: str, tenant_id: int, user_id: int | None, name: object, scenario: str,
                  parts: Sequence[BookPart]) -> SavedScenario:
    """Save a scenario under a name, after checking it against the live book's symbols."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "give the scenario a name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"at most {MAX_NAME} characters, got {len(name)}")
    text = check_scenario_text(scenario)
    try:
        parse_scenario(text, book_symbols(parts))
    except ScenarioError as exc:
        raise InvalidInput("scenario", str(exc)) from None
    try:
        with tenant_session(url, tenant_id) as session:
            count = session.exec(select(func.count()).select_from(StressScenario)
                                 .where(col(StressScenario.tenant_id) == tenant_id)).one()
            if count >= MAX_SAVED:
                raise Conflict(f"A broker keeps at most {MAX_SAVED} saved scenarios; delete one first.")
            row = StressScenario(tenant_id=tenant_id, name=name, scenario=text, created_by=user_id)
            session.add(row)
            session.flush()
            saved = _saved(row)
    except IntegrityError:
        raise Conflict(f"A scenario named {name!r} exists already.") from None
    return saved


def delete_scenario(url: str, tenant_id: int, scenario_id: int) -> None:
    """Delete one of the tenant's scenarios (NotFound for another tenant's, or none)."""
    with tenant_session(url, tenant_id) as session:
        row = session.get(StressScenario, scenario_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"No saved scenario {scenario_id}.")
        session.delete(row)


def get_scenario(url: str, tenant_id: int, scenario_id: int) -> SavedScenario:
    """One saved scenario (NotFound for another tenant's, or none)."""
    with tenant_session(url, tenant_id) as session:
        row = session.get(StressScenario, scenario_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"No saved scenario {scenario_id}.")
        return _saved(row)
