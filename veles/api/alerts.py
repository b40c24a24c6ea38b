"""Alerts (`/api/v1/alerts`: list, acknowledge, resolve) and alert rules (`/api/v1/alert-rules`).

Anyone who may view risk lists them; acknowledging and resolving need `ACK_ALERTS`, changing rules
`EDIT_RULES`. An alert or rule of another tenant answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from veles.api.db import RowId, TenantUnit
from veles.api.deps import ApiContext, Context, requires
from veles.api.realtime import announce_alert_state
from veles.services.alert_reader import ReaderView, mark_read, reader, set_desktop_notifications
from veles.services.alert_state import publish_alert_states
from veles.services.alerts import (
    AlertFilter,
    AlertView,
    BuiltInView,
    RuleChange,
    RuleForm,
    RuleView,
    acknowledge,
    alert_seq,
    built_in_rules,
    create_rule,
    delete_rule,
    get_alert,
    list_alerts,
    list_rules,
    resolve,
    update_rule,
)
from veles.services.auth import Identity
from veles.services.engine import apply_rules
from veles.services.escalation import EscalationForm, get_escalation, set_escalation
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["alerts"])
T = TypeVar("T")
APPLY_TIMEOUT = 15.0  # seconds to wait for the running engine to take new rules
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]
Acker = Annotated[Identity, Depends(requires(Permission.ACK_ALERTS))]
Editor = Annotated[Identity, Depends(requires(Permission.EDIT_RULES))]


def _errors(action: str) -> dict[int | str, dict[str, str]]:
    return {401: {"description": "Not signed in"}, 403: {"description": f"Role may not {action}"}}


ALERT = {**_errors("do this"), 404: {"description": "No such alert in your tenant"}}
RULE = {**_errors("edit rules"), 404: {"description": "No such rule in your tenant"}}


SEQ_HEADER = "X-Alert-Seq"


@router.get("/alerts", responses=_errors("view risk"))
def alerts(
    identity: Viewer, db: TenantUnit, query: Annotated[AlertFilter, Query()], response: Response
) -> list[AlertView]:
    """The tenant's alerts, newest first, filtered by state, severity and `since`; with
    `after_seq`, those the engine changed after that number, in its order. The `X-Alert-Seq`
    header is the tenant's last alert sequence number when the list was read: a client applies
    the `alert` events numbered after it (it read it before the list, so none is missed)."""
    response.headers[SEQ_HEADER] = str(alert_seq(db, identity.tenant_id))
    return list_alerts(db, identity.tenant_id, query)


@router.get("/alerts/{alert_id}", responses=ALERT)
def alert(alert_id: RowId, identity: Viewer, db: TenantUnit) -> AlertView:
    """One alert."""
    return get_alert(db, identity.tenant_id, alert_id)


def _announce(request: Request, tasks: BackgroundTasks, tenant_id: int, view: AlertView) -> AlertView:
    """Push the new state to the tenant's sockets and to its portal pages and bells
    (`alert_state`, in the thread pool: a network call) after the response, so after the commit
    (the session is scoped to the route function)."""
    tasks.add_task(announce_alert_state, request.app.state.sio, tenant_id, jsonable_encoder(view))
    settings = request.app.state.context.settings
    tasks.add_task(publish_alert_states, tenant_id, [view], settings=settings)
    return view


@router.post("/alerts/{alert_id}/acknowledge", responses={**ALERT, 409: {"description": "Already resolved"}})
def ack(
    alert_id: RowId, identity: Acker, db: TenantUnit, request: Request, tasks: BackgroundTasks
) -> AlertView:
    """Acknowledge an open alert: records who and when; sockets of the tenant get `alert_state`."""
    view = acknowledge(db, identity.tenant_id, alert_id, identity.user_id)
    return _announce(request, tasks, identity.tenant_id, view)


@router.post("/alerts/{alert_id}/resolve", responses=ALERT)
def resolved(
    alert_id: RowId, identity: Acker, db: TenantUnit, request: Request, tasks: BackgroundTasks
) -> AlertView:
    """Resolve an alert: records when (and who, if nobody had acknowledged it); sockets of the
    tenant get `alert_state`."""
    view = resolve(db, identity.tenant_id, alert_id, identity.user_id)
    return _announce(request, tasks, identity.tenant_id, view)


@router.get("/me/alerts", responses=_errors("view risk"))
def my_alerts(identity: Viewer, db: TenantUnit) -> ReaderView:
    """Your unread count (open alerts raised after your read mark), your read mark, the tenant's
    last alert number, and whether you opted in to desktop notifications of critical alerts."""
    return reader(db, identity.tenant_id, identity.user_id)


@router.post("/me/alerts/read", responses=_errors("view risk"))
def read_all(identity: Viewer, db: TenantUnit) -> ReaderView:
    """Mark every alert raised so far as read by you."""
    return mark_read(db, identity.tenant_id, identity.user_id)


class DesktopChoice(BaseModel):
    """Whether critical alerts may show a desktop notification (the browser asks its permission)."""

    model_config = ConfigDict(extra="forbid")

    desktop_notifications: bool


@router.put("/me/alerts", responses=_errors("view risk"))
def desktop(choice: DesktopChoice, identity: Viewer, db: TenantUnit) -> ReaderView:
    """Opt in to or out of desktop notifications of critical alerts."""
    return set_desktop_notifications(db, identity.tenant_id, identity.user_id, choice.desktop_notifications)


@router.get("/alert-escalation", responses=_errors("view risk"))
def escalation(identity: Viewer, db: TenantUnit) -> EscalationForm:
    """Minutes a critical alert may stay open and unacknowledged before it is escalated by e-mail
    and SMS to every risk user (null: never)."""
    return get_escalation(db, identity.tenant_id)


@router.put("/alert-escalation", responses=_errors("edit rules"))
def change_escalation(form: EscalationForm, identity: Editor, db: TenantUnit) -> EscalationForm:
    """Set the escalation delay (null switches escalation off); 422 names `after_minutes`."""
    return set_escalation(db, identity.tenant_id, form, actor=identity.user_id)


@router.get("/alert-rules", responses=_errors("view risk"))
def rules(identity: Viewer, db: TenantUnit) -> list[RuleView]:
    """The tenant's alert rules."""
    return list_rules(db, identity.tenant_id)


@router.get("/alert-rules/built-in", responses=_errors("view risk"))
def built_in(identity: Viewer, db: TenantUnit) -> list[BuiltInView]:
    """The rules the engine runs without a stored row: margin call and stop out by each account's
    own MT5 group levels (always on; your rules add to them), and the desk's defaults, each replaced
    by a stored rule of its kind."""
    return built_in_rules(db, identity.tenant_id)


@dataclass(frozen=True, slots=True)
class RuleSaved:
    """A stored rule and what the running engine made of the tenant's rules after the change
    (`veles.services.engine.apply_rules`: `running`, `rules`, `skipped`; or `error`)."""

    rule: RuleView | None
    engine: dict[str, Any]


def _committed(db: Session, work: Callable[[], T]) -> T:
    result = work()
    db.commit()
    return result


async def _saved(
    ctx: ApiContext, db: Session, tenant_id: int, work: Callable[[], RuleView | None]
) -> RuleSaved:
    """Run a rule change and commit it, then push the tenant's rules to its running engine.

    The change is committed first because the engine reads the stored rules. If the engine cannot
    be reached the change still stands (a starting engine reads the stored rules), and `engine`
    says why it was not applied now.
    """
    rule = await run_in_threadpool(_committed, db, work)
    try:
        engine = await asyncio.wait_for(apply_rules(ctx.settings, tenant_id), APPLY_TIMEOUT)
    except Exception as exc:  # Ray unreachable or slow: the stored rules win at the next start
        engine = {"running": False, "error": f"rules saved; the running engine was not updated: {exc!r}"}
    return RuleSaved(rule, engine)


@router.post("/alert-rules", status_code=status.HTTP_201_CREATED, responses=_errors("edit rules"))
async def add_rule(form: RuleForm, identity: Editor, db: TenantUnit, ctx: Context) -> RuleSaved:
    """Add a rule and apply the tenant's rules to its running engine."""
    return await _saved(
        ctx, db, identity.tenant_id, lambda: create_rule(db, identity.tenant_id, form, actor=identity.user_id)
    )


@router.patch("/alert-rules/{rule_id}", responses=RULE)
async def change_rule(
    rule_id: RowId, change: RuleChange, identity: Editor, db: TenantUnit, ctx: Context
) -> RuleSaved:
    """Change a rule's fields and apply the tenant's rules to its running engine."""
    return await _saved(
        ctx, db, identity.tenant_id,
        lambda: update_rule(db, identity.tenant_id, rule_id, change, actor=identity.user_id),
    )


@router.delete("/alert-rules/{rule_id}", responses=RULE)
async def remove_rule(rule_id: RowId, identity: Editor, db: TenantUnit, ctx: Context) -> RuleSaved:
    """Remove a rule (the alerts it raised stay) and apply the remaining rules to the engine."""
    return await _saved(
        ctx, db, identity.tenant_id,
        lambda: delete_rule(db, identity.tenant_id, rule_id, actor=identity.user_id),
    )
