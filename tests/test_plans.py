"""Plan limits: Starter 1 server / 100 accounts, Professional 5 / 1,000, Enterprise unlimited."""

from __future__ import annotations

import pytest

from veles.plans import PLANS, PlanLimitExceeded, check_usage, is_plan_limit


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
    with pytest.raises(PlanLimitExceeded, match=message) as refused:
        check_usage(plan, servers, accounts)
    assert is_plan_limit(str(refused.value))  # shown with the upgrade link
    assert is_plan_limit(f"Refused: {refused.value}.")  # as the engine stores it on the connection


@pytest.mark.parametrize("message", [
    None, "", "Could not connect to sim://alpha: wrong password", "login 1001 is already used",
    "the plan is fine", "gave up after 3 attempts in 60 s: ConnectionRefusedError",
])
def test_other_messages_are_no_plan_limit(message: str | None) -> None:
    assert not is_plan_limit(message)


def test_the_history_retention_message_is_a_plan_limit() -> None:
    assert is_plan_limit("the Starter plan keeps 30 days of history (since 2026-11-07 21:00 UTC) and this "
                         "range ends before that: upgrade to keep more")
