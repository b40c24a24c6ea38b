"""`user/account/get_batch`: the server's own trade figures of each account, read exactly.

These are the figures MT5 itself computes (balance, credit, equity, margin, free margin, margin
level), which reconciliation holds Veles' own against. Money arrives as strings with the
account's `CurrencyDigits` and becomes integer minor units; the margin level (a percentage with
two decimals) becomes hundredths of a percent, None when the server reports no margin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from veles.mt5.webapi import numbers
from veles.mt5.webapi.client import WebApiClient
from veles.mt5.webapi.errors import ProtocolError

STEP = "user/account/get_batch"
LEVEL_DIGITS = 2  # the margin level is compared in hundredths of a percent


@dataclass(frozen=True, slots=True)
class WebAccount:
    """One account's figures as the server computes them; money in minor units of `digits`."""

    login: int
    digits: int
    balance: int
    credit: int
    equity: int
    margin: int
    free_margin: int
    margin_level: int | None  # hundredths of a percent; None when margin is 0


def parse_account(record: object) -> WebAccount:
    """One IMTAccount record; ProtocolError naming the field when it is not what MT5 sends."""
    if not isinstance(record, dict):
        raise ProtocolError(STEP, "expected a JSON object record")
    try:
        return _account(record)
    except (KeyError, ValueError) as exc:
        raise ProtocolError(STEP, f"bad record: {exc}") from None


def _account(r: Mapping[str, Any]) -> WebAccount:
    digits = numbers.integer(r["CurrencyDigits"], "CurrencyDigits")
    margin = numbers.minor_units(r["Margin"], digits, "Margin")
    level = numbers.decimal(r["MarginLevel"], "MarginLevel").scaleb(LEVEL_DIGITS)
    if level != level.to_integral_value():
        raise ValueError(f"MarginLevel {r['MarginLevel']!r} has more than {LEVEL_DIGITS} decimals")
    return WebAccount(
        login=numbers.integer(r["Login"], "Login"),
        digits=digits,
        balance=numbers.minor_units(r["Balance"], digits, "Balance"),
        credit=numbers.minor_units(r["Credit"], digits, "Credit"),
        equity=numbers.minor_units(r["Equity"], digits, "Equity"),
        margin=margin,
        free_margin=numbers.minor_units(r["MarginFree"], digits, "MarginFree"),
        margin_level=int(level) if margin != 0 else None,
    )


async def account_figures(client: WebApiClient, logins: Sequence[int] = (), mask: str = "*"
                          ) -> dict[int, WebAccount]:
    """The server's figures of `logins` (or of the groups matching `mask` when none are named),
    by login. A record that does not parse fails the whole read (ProtocolError): half an answer
    would look like accounts without drift."""
    params = {"login": ",".join(map(str, logins))} if logins else {"group": mask}
    answer = await client.answer(f"/api/{STEP}", params)
    if not isinstance(answer, list):
        raise ProtocolError(STEP, "expected a list of records")
    accounts = [parse_account(r) for r in answer]
    return {a.login: a for a in accounts}
