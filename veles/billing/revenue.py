"""What the platform sells, for its admin page: monthly recurring revenue, the plan mix and the
tenants behind on payment, from the subscription state stored on each tenant (no Stripe call).

MRR counts each tenant whose Stripe subscription Stripe still bills (`active`, `past_due`,
`unpaid`) at its plan's monthly list price, in integer cents: a trial, a cancelled subscription, a
suspended tenant and a tenant set up by the operator without a subscription add nothing. Past-due
money is shown apart ("at risk"), as it is counted in MRR until the subscription ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from models.billing import BillingStatus
from models.db import session_scope
from models.tenancy import Role, Tenant
from veles.plans import PLANS
from veles.services.permissions import Permission, require

BILLED = frozenset({"active", "past_due", "unpaid"})
BEHIND = (BillingStatus.PAST_DUE, BillingStatus.READ_ONLY, BillingStatus.SUSPENDED)


@dataclass(frozen=True, slots=True)
class PlanMix:
    """One plan: tenants on it, those paying for it, and what they bring a month (cents)."""

    plan: str
    name: str
    tenants: int
    paying: int
    trialing: int
    mrr_cents: int


@dataclass(frozen=True, slots=True)
class Behind:
    """A tenant behind on payment: where dunning has it and since when."""

    tenant_id: int
    name: str
    plan: str
    billing_status: str
    lapsed_at: datetime | None
    monthly_cents: int


@dataclass(frozen=True, slots=True)
class Revenue:
    mrr_cents: int
    at_risk_cents: int  # the MRR of tenants behind on payment
    mix: list[PlanMix]
    behind: list[Behind]


def revenue(role: Role | str, database_url: str) -> Revenue:
    """The platform's revenue figures (platform admins only; blocking: database)."""
    require(role, Permission.PLATFORM)
    with session_scope(database_url) as session:
        brokers = list(session.exec(select(Tenant).where(col(Tenant.is_platform).is_(False))
                                    .order_by(col(Tenant.id))).all())
        mix: list[PlanMix] = []
        for plan, limits in PLANS.items():
            on = [t for t in brokers if t.plan.value == plan]
            paying = [t for t in on if _billed(t)]
            mix.append(PlanMix(plan=plan, name=limits.name, tenants=len(on), paying=len(paying),
                               trialing=sum(t.billing_status is BillingStatus.TRIALING for t in on),
                               mrr_cents=len(paying) * limits.monthly_usd * 100))
        late = [t for t in brokers if t.billing_status in BEHIND]  # listed longest behind first
        behind = sorted((Behind(tenant_id=t.id or 0, name=t.name, plan=t.plan.value,
                                billing_status=t.billing_status.value, lapsed_at=t.lapsed_at,
                                monthly_cents=PLANS[t.plan.value].monthly_usd * 100) for t in late),
                        key=lambda b: (b.lapsed_at is None, str(b.lapsed_at), b.tenant_id))
        at_risk = sum(PLANS[t.plan.value].monthly_usd * 100 for t in late if _billed(t))
        return Revenue(mrr_cents=sum(m.mrr_cents for m in mix), at_risk_cents=at_risk, mix=mix, behind=behind)


def _billed(tenant: Tenant) -> bool:
    return (tenant.stripe_subscription_id is not None and tenant.subscription_status in BILLED
            and tenant.billing_status is not BillingStatus.SUSPENDED)


def dollars(cents: int) -> str:
    """Integer cents as '$1,234.56' (no float on the way)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"
