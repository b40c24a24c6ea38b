"""Plan limits: Starter 1 server / 100 accounts, Professional 5 / 1,000, Enterprise unlimited."""

from __future__ import annotations

import pytest

from veles.plans import PLANS, PlanLimitExceeded, check_usage


def test_limits_are_the_published_ones() -> None:
    assert [(p.monthly_usd, p.max_servers, p.max_accounts) for p in PLANS.values()] == [
        (199, 1, 100), (499, 5, 1_000), (999, None, None)
    ]


@pytest.mark.parametrize(("plan", "servers", "accounts"), [
    ("starter", 1, 100), ("professional", 5, 1_000), ("enterprise", 500, 1_000_000)
])
def test_usage_at_the_limit_is_allowed(plan: str, servers: int, accounts: int) -> None:
    check_usage(plan, servers, accounts)


@pytest.mark.parametrize(("plan", "servers", "accounts", "message"), [
    ("starter", 2, 10, "Starter plan allows 1 MT5 server"),
    ("starter", 1, 101, "Starter plan allows 100 accounts; this would make 101"),
    ("professional", 6, 10, "Professional plan allows 5 MT5 server"),
    ("professional", 5, 1_001, "Professional plan allows 1000 accounts"),
])
def test_usage_over_the_limit_is_refused_with_the_reason(plan: str, servers: int, accounts: int,
                                                          message: str) -> None:
    with pytest.raises(PlanLimitExceeded, match=message):
        check_usage(plan, servers, accounts)
