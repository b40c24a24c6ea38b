"""What each subscription plan allows. Low-level on purpose: the engine enforces these limits and
the web tier shows them, so both import this module and neither imports the other."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """Limits of one plan; None means unlimited."""

    name: str
    monthly_usd: int
    max_servers: int | None
    max_accounts: int | None
    history_days: int = 30  # risk history kept (per-minute points); older points are pruned


PLANS: dict[str, PlanLimits] = {
    "starter": PlanLimits("Starter", 199, max_servers=1, max_accounts=100, history_days=30),
    "professional": PlanLimits("Professional", 499, max_servers=5, max_accounts=1_000, history_days=90),
    "enterprise": PlanLimits("Enterprise", 999, max_servers=None, max_accounts=None, history_days=365),
}


UPGRADE_PATH = "/plan"  # the portal's page where a bigger plan is bought (Checkout, or the Billing Portal)
_LIMIT = re.compile(r"\bthe \w+ plan (allows \d[\d,]* (MT5 server\(s\)|accounts)|keeps \d+ days of history)")


class PlanLimitExceeded(Exception):
    """A tenant asked for more MT5 servers or accounts than its plan allows."""


def is_plan_limit(message: str | None) -> bool:
    """Whether a stored refusal (a connection's last error, say) is one of this module's plan-limit
    messages, so whoever shows it can offer the upgrade."""
    return bool(message) and _LIMIT.search(message or "") is not None


def check_usage(plan: str, servers: int, accounts: int) -> None:
    """Raise PlanLimitExceeded, naming the plan, the limit and the usage, when over a limit."""
    limits = PLANS[plan]
    if limits.max_servers is not None and servers > limits.max_servers:
        raise PlanLimitExceeded(
            f"the {limits.name} plan allows {limits.max_servers} MT5 server(s); this would make {servers}"
        )
    if limits.max_accounts is not None and accounts > limits.max_accounts:
        raise PlanLimitExceeded(
            f"the {limits.name} plan allows {limits.max_accounts} accounts; this would make {accounts}"
        )
