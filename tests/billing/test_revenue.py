"""The platform admin's revenue figures from stored subscription state: MRR in integer cents, the
plan mix, and the tenants behind on payment (longest behind first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.billing import BillingStatus
from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant
from tests.models.conftest import reset_schema
from veles.billing.revenue import dollars, revenue
from veles.services.permissions import PermissionDenied

pytestmark = pytest.mark.postgres


def _nov(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


def test_mrr_plan_mix_and_who_is_behind(pg_url: str) -> None:
    reset_schema(pg_url)
    upgrade(pg_url)
    rows = [  # name, plan, billing, subscription status, lapsed
        ("Paid Starter", Plan.STARTER, BillingStatus.ACTIVE, "active", None),
        ("Paid Pro A", Plan.PROFESSIONAL, BillingStatus.ACTIVE, "active", None),
        ("Paid Pro B", Plan.PROFESSIONAL, BillingStatus.ACTIVE, "active", None),
        ("Late Pro", Plan.PROFESSIONAL, BillingStatus.PAST_DUE, "past_due", _nov(20)),
        ("Locked Ent", Plan.ENTERPRISE, BillingStatus.READ_ONLY, "past_due", _nov(10)),
        ("Stopped Ent", Plan.ENTERPRISE, BillingStatus.SUSPENDED, "unpaid", _nov(1)),
        ("Trial", Plan.STARTER, BillingStatus.TRIALING, None, None),
        ("Operator's", Plan.ENTERPRISE, BillingStatus.ACTIVE, None, None),  # no subscription: not sold
        ("Cancelled", Plan.STARTER, BillingStatus.PAST_DUE, "canceled", _nov(25)),
    ]
    with session_scope(pg_url) as session:
        session.add(Tenant(name="Platform", is_platform=True, plan=Plan.ENTERPRISE))
        for n, (name, plan, billing, sub_status, lapsed) in enumerate(rows):
            session.add(Tenant(name=name, plan=plan, billing_status=billing, subscription_status=sub_status,
                               stripe_subscription_id=f"sub_rev_{n}" if sub_status else None,
                               lapsed_at=lapsed))
    figures = revenue(Role.PLATFORM_ADMIN, pg_url)
    # 199 + 3 x 499 (two paid, one past due) + 999 (read-only: still billed by Stripe) = 2,695 USD
    assert figures.mrr_cents == 269_500
    assert figures.at_risk_cents == 49_900 + 99_900
    assert dollars(figures.mrr_cents) == "$2,695.00"
    mix = {m.plan: (m.tenants, m.paying, m.trialing, m.mrr_cents) for m in figures.mix}
    assert mix == {"starter": (3, 1, 1, 19_900), "professional": (3, 3, 0, 149_700),
                   "enterprise": (3, 1, 0, 99_900)}
    assert [(b.name, b.billing_status) for b in figures.behind] == [
        ("Stopped Ent", "suspended"), ("Locked Ent", "read_only"), ("Late Pro", "past_due"),
        ("Cancelled", "past_due")]
    with pytest.raises(PermissionDenied):
        revenue(Role.TENANT_ADMIN, pg_url)


def test_dollars_are_exact() -> None:
    assert [dollars(c) for c in (0, 5, 199_00, 123_456_789, -250)] == [
        "$0.00", "$0.05", "$199.00", "$1,234,567.89", "-$2.50"]
