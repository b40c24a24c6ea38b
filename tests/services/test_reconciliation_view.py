"""The connections page's words for a reconciliation view: nothing checked yet, agreeing, a
failed read with its reason, and drifting accounts with one row per differing figure."""

from __future__ import annotations

import dataclasses

from tests.actors.support import account_figures
from veles.mt5.reconciliation import Reconciliation
from veles.mt5.webapi.accounts import WebAccount
from veles.risk.money import to_minor
from veles.services.reconciliation import UNCHECKED, of_view


def _server(margin_off_by: int = 0) -> tuple[dict[int, object], WebAccount]:
    figures = account_figures()
    level = None if figures.margin_level is None else to_minor(figures.margin_level)
    account = WebAccount(figures.login, 2, to_minor(figures.balance), to_minor(figures.credit),
                         to_minor(figures.equity), to_minor(figures.margin) + margin_off_by,
                         to_minor(figures.free_margin), level)
    return {figures.login: figures}, account


def test_unchecked_agreeing_and_failed() -> None:
    reconciliation = Reconciliation("conn-4", every_s=30.0)
    assert of_view(reconciliation.view()) is UNCHECKED
    veles, account = _server()
    reconciliation.take(veles, {account.login: account}, now=1_800_000_000.0)  # type: ignore[arg-type]
    agreeing = of_view(reconciliation.view())
    assert agreeing.state == "ok"
    assert agreeing.summary == "0 of 1 accounts drifting (checked 2027-01-15 08:00:00)"
    reconciliation.failed("user/account/get_batch: HTTP 403: no session (or no Web API access)",
                          now=1_800_000_030.0)
    failed = of_view(reconciliation.view())
    assert failed.state == "failed"
    assert failed.summary == ("check failed at 2027-01-15 08:00:30: user/account/get_batch: HTTP 403: no "
                              "session (or no Web API access)")


def test_drifting_accounts_become_one_row_per_figure() -> None:
    veles, account = _server(margin_off_by=-12_345)
    figures = next(iter(veles.values()))
    reconciliation = Reconciliation("conn-4", every_s=30.0)
    for moment in (1_800_000_000.0, 1_800_000_030.0):
        reconciliation.take(veles, {account.login: account}, now=moment)  # type: ignore[arg-type]
    shown = of_view(reconciliation.view())
    assert shown.state == "drifting"
    currency = dataclasses.asdict(figures)["currency"]
    assert shown.summary == f"1 of 1 accounts drifting; worst 123.45 {currency} (checked 2027-01-15 08:00:30)"
    margin = next(row for row in shown.drifts if row["figure"] == "margin")
    assert margin["login"] == str(figures.login)
    assert margin["drift"] == f"123.45 {currency}"
    assert margin["veles"] == f"{figures.margin:,.2f} {currency}"
    assert margin["mt5"] == f"{figures.margin - 123.45:,.2f} {currency}"
