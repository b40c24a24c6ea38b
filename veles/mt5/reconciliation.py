"""Reconciliation: Veles' figures of each account held against the MT5 server's own.

Veles computes balance, credit, equity, margin, free margin and margin level itself (the risk
core, from the deals, positions, prices and symbol settings it reads). The server computes the
same figures and publishes them (`user/account/get_batch`). Comparing the two, account by account,
every few seconds proves the math against the server live, and catches what a test cannot: a
symbol setting Veles read wrongly, a deal it missed, a group setting it does not model.

Units. Money is compared in integer minor units of the account's currency, the margin level in
hundredths of a percent. Both sides round to those units, so one unit of difference is rounding;
an account drifts when a figure differs by more than one unit (more than a cent, for cents).

The server's update lag. The two readings are never at exactly the same instant: Veles shows the
server as of its last poll, while the server answers as of now. Two things allow for it:

* matching time where it can be had: for a simulated server the engine holds the connection's
  pump between two batches while the server is read, so both sides are at the same batch
  (`TenantSupervisor._reconcile`); exact, drift must be 0;
* persistence everywhere: an account counts as drifting (alert, metrics, portal) only when it
  drifted at two checks in a row. A difference that a price tick or a deal in flight explains is
  gone by the next check; a wrong contract size or margin rate is still there.

A check whose server read fails (refused, malformed, timed out) is counted and its reason kept
(`view()`), and changes no account's drift: a server that cannot be read says nothing either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from veles.mt5.gateway import GatewayError
from veles.mt5.webapi.accounts import LEVEL_DIGITS, WebAccount
from veles.risk.account import AccountFigures
from veles.risk.alerts import Alert, AlertKind, AlertStatus, Severity
from veles.risk.money import to_minor

log = logging.getLogger(__name__)

MONEY_FIELDS = ("balance", "credit", "equity", "margin", "free_margin")
FIELDS = (*MONEY_FIELDS, "margin_level")
TOLERANCE = 1  # units: both sides round to the unit, so one unit apart is rounding, not drift
RULE_ID = "reconciliation"  # the engine rule id of drift alerts (built in: no alert_rule row)
SHOWN_ACCOUNTS = 50  # drifting accounts kept for the portal, worst first
LABELS = {"balance": "balance", "credit": "credit", "equity": "equity", "margin": "margin",
          "free_margin": "free margin", "margin_level": "margin level"}


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One figure that disagrees: Veles' value and the server's, in units (minor units of money,
    hundredths of a percent for the margin level; None: no margin level)."""

    veles: int | None
    server: int | None

    @property
    def amount(self) -> int:
        """|Veles - server| in units; a margin level on one side only counts as its full value."""
        return abs((self.veles or 0) - (self.server or 0))


@dataclass(frozen=True, slots=True)
class AccountDrift:
    """An account whose figures differ from the server's beyond one unit."""

    login: int
    currency: str
    digits: int
    fields: dict[str, FieldDrift]

    @property
    def money(self) -> int:
        """The largest money drift, in minor units (0 when only the margin level differs)."""
        return max((d.amount for name, d in self.fields.items() if name in MONEY_FIELDS), default=0)

    def sentence(self) -> str:
        """The drift in words, worst money figure first."""
        parts = []
        for name, d in sorted(self.fields.items(), key=lambda item: -item[1].amount):
            unit_digits = LEVEL_DIGITS if name == "margin_level" else self.digits
            suffix = "%" if name == "margin_level" else f" {self.currency}"
            parts.append(f"{LABELS[name]} {_shown(d.veles, unit_digits)}{suffix} in Veles, "
                         f"{_shown(d.server, unit_digits)}{suffix} on the server")
        return "; ".join(parts)

    def as_row(self, confirmed: bool) -> dict[str, Any]:
        """Plain JSON for the portal and the status."""
        return {
            "login": self.login, "currency": self.currency, "digits": self.digits, "confirmed": confirmed,
            "max_drift_minor": self.money,
            "fields": {name: {"veles": d.veles, "server": d.server, "drift": d.amount}
                       for name, d in self.fields.items()},
        }


def _shown(units: int | None, digits: int) -> str:
    if units is None:
        return "none"
    return f"{units / 10**digits:,.{digits}f}"


def veles_units(figures: AccountFigures, digits: int) -> dict[str, int | None]:
    """Veles' figures of one account in the units the server's are read in."""
    units: dict[str, int | None] = {name: to_minor(getattr(figures, name), digits) for name in MONEY_FIELDS}
    level = figures.margin_level
    units["margin_level"] = None if level is None else to_minor(level, LEVEL_DIGITS)
    return units


def server_units(account: WebAccount) -> dict[str, int | None]:
    """The server's figures of one account, field by field."""
    return {"balance": account.balance, "credit": account.credit, "equity": account.equity,
            "margin": account.margin, "free_margin": account.free_margin,
            "margin_level": account.margin_level}


def compare(veles: Mapping[int, AccountFigures], server: Mapping[int, WebAccount]) -> dict[int, AccountDrift]:
    """Every account both sides know whose figures differ beyond one unit, by login. Money is
    compared in the server's currency digits for the account (what its group says)."""
    drifts = {}
    for login, figures in veles.items():
        account = server.get(login)
        if account is None:
            continue
        ours, theirs = veles_units(figures, account.digits), server_units(account)
        pairs = {name: FieldDrift(ours[name], theirs[name]) for name in FIELDS}
        fields = {name: d for name, d in pairs.items()
                  if d.amount > TOLERANCE or (d.veles is None) != (d.server is None)}
        if fields:
            drifts[login] = AccountDrift(login, figures.currency, account.digits, fields)
    return drifts


@dataclass
class Reconciliation:
    """One connection's reconciliation: when the next check is due, what the last ones found.

    Thread-safe: checks run in a worker thread while the supervisor reads `view()` on its loop.
    """

    connection_id: str
    every_s: float
    checks: int = 0
    failures: int = 0
    last_check: float | None = None  # wall-clock time of the last check (successful or not)
    last_error: str | None = None  # why the last check failed; None after a successful one
    compared: int = 0  # accounts both sides knew at the last successful check
    unmatched: int = 0  # accounts only one side knew then (a narrower group mask, a new account)
    seen: dict[int, AccountDrift] = field(default_factory=dict)  # drifting at the last check
    confirmed: set[int] = field(default_factory=set)  # drifting at two checks in a row (alerted)
    next_at: float = 0.0  # time.monotonic() the next check is due
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def due(self, now: float) -> bool:
        """Whether a check is due at monotonic time `now`; if so the next one is scheduled."""
        if now < self.next_at:
            return False
        self.next_at = now + self.every_s
        return True

    def take(self, veles: Mapping[int, AccountFigures], server: Mapping[int, WebAccount],
             now: float | None = None) -> list[Alert]:
        """Record one successful check; the alerts it raises (drift seen twice in a row) and
        clears (a confirmed account that agrees again)."""
        now = time.time() if now is None else now
        drifts = compare(veles, server)
        time_msc = int(now * 1000)
        alerts = []
        with self._lock:
            self.checks += 1
            self.last_check, self.last_error = now, None
            self.compared = len(veles.keys() & server.keys())
            self.unmatched = len(veles.keys() ^ server.keys())
            for login, drift in drifts.items():
                if login in self.seen and login not in self.confirmed:
                    self.confirmed.add(login)
                    alerts.append(self._alert(drift, AlertStatus.RAISED, time_msc))
            for login in sorted(self.confirmed - drifts.keys()):
                self.confirmed.discard(login)
                alerts.append(Alert(
                    RULE_ID, AlertKind.RECONCILIATION_DRIFT, Severity.WARNING, str(login), 0.0,
                    10 ** -self.seen[login].digits if login in self.seen else 0.01, AlertStatus.CLEARED,
                    time_msc, f"Account {login} on connection {self.connection_id} agrees with the MT5 "
                    "server's own figures again."))
            self.seen = drifts
        return alerts

    def check(self, read: Callable[[], Mapping[int, WebAccount]],
              veles: Mapping[int, AccountFigures]) -> list[Alert]:
        """Read the server (blocking: call from a worker thread) and compare; a read that fails
        for any reason is recorded by `failed` with the reason, never raised: a server that
        answers badly must not stop the connection it reconciles."""
        try:
            server = read()
        except GatewayError as exc:  # every Web API failure: refused, lost, malformed, rights
            self.failed(str(exc))
            return []
        except Exception as exc:
            log.warning("%s: reconciliation read failed", self.connection_id, exc_info=True)
            self.failed(f"{type(exc).__name__}: {exc}")
            return []
        return self.take(veles, server)

    def failed(self, reason: str, now: float | None = None) -> None:
        """Record a check whose server read failed; drift is left as it was."""
        with self._lock:
            self.checks += 1
            self.failures += 1
            self.last_check = time.time() if now is None else now
            self.last_error = reason

    def _alert(self, drift: AccountDrift, status: AlertStatus, time_msc: int) -> Alert:
        unit = 10 ** -drift.digits
        return Alert(
            RULE_ID, AlertKind.RECONCILIATION_DRIFT, Severity.WARNING, str(drift.login),
            round(drift.money * unit, drift.digits), unit, status, time_msc,
            f"Account {drift.login} on connection {self.connection_id} differs from the MT5 server's own "
            f"figures at two checks in a row: {drift.sentence()}; check the symbol and group settings "
            "Veles reads for it.",
        )

    def view(self) -> dict[str, Any]:
        """Plain JSON (crosses Ray and Redis): the portal's and `/metrics`' view of the checks."""
        with self._lock:
            worst = sorted(self.seen.values(), key=lambda d: (-(d.login in self.confirmed), -d.money))
            return {
                "connection_id": self.connection_id,
                "every_s": self.every_s,
                "checks": self.checks,
                "failures": self.failures,
                "last_check": self.last_check,
                "last_error": self.last_error,
                "compared": self.compared,
                "unmatched": self.unmatched,
                "drifting": len(self.confirmed),
                "drifting_once": len(self.seen.keys() - self.confirmed),
                "max_drift_minor": max((self.seen[lg].money for lg in self.confirmed if lg in self.seen),
                                       default=0),
                "accounts": [d.as_row(d.login in self.confirmed) for d in worst[:SHOWN_ACCOUNTS]],
            }
