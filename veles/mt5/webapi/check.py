"""`check`: authenticate to an MT5 Web API server and read what Veles needs once, so a broker
learns in one command whether the manager account, its rights and the IP allow-list are right."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass

from veles.mt5.webapi.client import WebApiClient, WebApiSettings
from veles.mt5.webapi.errors import WebApiError

FAILED = "mt5 check failed at"


@dataclass(frozen=True)
class CheckResult:
    """What the server showed: counts of what the manager can read."""

    server: str
    version_access: str
    symbols: int
    groups: int
    users: int
    positions: int


async def check(settings: WebApiSettings, mask: str = "*") -> CheckResult:
    """Authenticate (mutually), then read symbols, groups, users and positions of `mask`.
    Raises `WebApiError` naming the step that failed."""
    async with WebApiClient(settings) as client:
        await client.ping()
        symbols = await client.symbols()
        groups = await client.groups()
        users = await client.users(groups, mask)
        positions = await client.positions(mask)
        return CheckResult(settings.url, client.version_access, len(symbols), len(groups), len(users),
                           len(positions))


@dataclass(frozen=True)
class CheckOutcome:
    """What `veles mt5 check` prints, for the CLI and the portal's "Test" alike: the JSON summary,
    or one line naming the failing step and the server's retcode."""

    ok: bool
    line: str
    result: CheckResult | None = None


def check_blocking(settings: WebApiSettings, mask: str = "*") -> CheckOutcome:
    """`check` on a loop of its own (a CLI, or a worker thread: never a running event loop);
    every failure becomes its one line, never an exception."""
    try:
        result = asyncio.run(check(settings, mask))
    except WebApiError as exc:
        return CheckOutcome(False, f"{FAILED} {exc}")
    except (OSError, ValueError) as exc:  # an unreadable CA bundle, a malformed URL
        return CheckOutcome(False, f"{FAILED} setup: {exc}")
    return CheckOutcome(True, json.dumps(dataclasses.asdict(result)), result)
