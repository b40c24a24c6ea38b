"""Dunning: an unpaid tenant goes past_due -> read_only -> suspended on a clock; payment ends it.

The clock starts at `Tenant.lapsed_at`: when a payment failed or the subscription ended (set by
the webhook, `veles.billing.service`), or when a trial ended without a subscription (set here,
to `trial_ends_at`). BILLING_GRACE_DAYS after it the tenant turns read-only (live figures stay,
every change is refused: `refuse_read_only`), BILLING_SUSPEND_DAYS after it the tenant is
suspended (engine stopped, sign-in refused, data kept). A paid subscription (the webhook) brings
any of these back to active at once and starts a suspended engine again.

`dunning_steps(settings, now)` takes the time as an argument, so tests run a month in a second;
`run_dunning` is what `veles engine` calls on its 30 s beat and `veles billing dunning` once.
Each step is audited (`billing.past_due`, `billing.read_only`, `billing.suspended`) and the
tenant's administrators are e-mailed after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from models.billing import BillingStatus
from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Tenant, TenantStatus
from veles.billing.engine import follow
from veles.billing.service import Mail, _aware, _notice, send_mails
from veles.config import Settings
from veles.services.audit import record
from veles.services.sessions import end_tenant_sessions

log = logging.getLogger(__name__)

STEPPING = (BillingStatus.TRIALING, BillingStatus.PAST_DUE, BillingStatus.READ_ONLY)


@dataclass(slots=True)
class Step:
    """One tenant moved one step; `suspend` tells the caller to stop its engine."""

    tenant_id: int | None
    to: BillingStatus
    why: str
    suspend: bool = False
    resume: bool = False
    plan_changed: bool = False


@dataclass(slots=True)
class Steps:
    steps: list[Step] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)


def dunning_steps(settings: Settings, now: datetime | None = None) -> Steps:
    """Move every tenant whose time has come (blocking: database). Idempotent: a tenant already at
    its step is left alone, so running it twice at the same `now` does nothing the second time."""
    now = now or utcnow()
    done = Steps()
    grace = timedelta(days=settings.billing_grace_days)
    suspend = timedelta(days=settings.billing_suspend_days)
    with session_scope(settings.database_url) as session:
        due = select(Tenant).where(col(Tenant.billing_status).in_(STEPPING),
                                   col(Tenant.is_platform).is_(False),
                                   Tenant.status == TenantStatus.ACTIVE).with_for_update()
        for tenant in session.exec(due).all():
            _step(session, settings, tenant, now, grace, suspend, done)
    return done


def _step(session: Session, settings: Settings, tenant: Tenant, now: datetime, grace: timedelta,
          suspend: timedelta, done: Steps) -> None:
    assert tenant.id is not None
    trial_end = _aware(tenant.trial_ends_at)
    if tenant.billing_status is BillingStatus.TRIALING:
        if trial_end is None or trial_end > now:
            return
        tenant.lapsed_at = trial_end
        _move(session, tenant, BillingStatus.PAST_DUE, "the trial ended without a subscription", done)
        done.mails.append(_notice(session, settings, tenant, "past_due",
                                  "the trial ended without a subscription"))
    lapsed = _aware(tenant.lapsed_at)
    if lapsed is None:  # past due without a clock (set by hand): start it now
        tenant.lapsed_at = lapsed = now
    days = (now - lapsed).days
    if tenant.billing_status is BillingStatus.PAST_DUE and now >= lapsed + grace:
        _move(session, tenant, BillingStatus.READ_ONLY, f"{days} days past due", done)
        done.mails.append(_notice(session, settings, tenant, "read_only", days=days))
    if tenant.billing_status is BillingStatus.READ_ONLY and now >= lapsed + suspend:
        _move(session, tenant, BillingStatus.SUSPENDED, f"{days} days past due", done)
        tenant.status = TenantStatus.SUSPENDED
        end_tenant_sessions(session, tenant.id)
        done.steps[-1].suspend = True
        done.mails.append(_notice(session, settings, tenant, "suspended", days=days))


def _move(session: Session, tenant: Tenant, to: BillingStatus, why: str, done: Steps) -> None:
    before = tenant.billing_status
    tenant.billing_status = to
    record(session, f"billing.{to.value}", tenant_id=None, target=f"tenant:{tenant.id}",
           details={"from": before.value, "why": why})
    done.steps.append(Step(tenant.id, to, why))


async def run_dunning(settings: Settings, now: datetime | None = None) -> list[Step]:
    """Take the due steps, stop the engines of tenants suspended now, and e-mail their
    administrators (the database and SMTP in threads)."""
    done = await asyncio.to_thread(dunning_steps, settings, now)
    for step in done.steps:
        if step.suspend:
            await follow(settings, step)
    if done.mails:
        await asyncio.to_thread(send_mails, settings, done.mails)
    return done.steps
