"""`check`: authenticate to an MT5 Web API server and read what Veles needs once, so a broker
learns in one command whether the manager account, its rights and the IP allow-list are right."""

from __future__ import annotations

from dataclasses import dataclass

from veles.mt5.webapi.client import WebApiClient, WebApiSettings


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
