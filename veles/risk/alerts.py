"""Alert rules for a tenant's risk desk: raise once on crossing a threshold, clear with hysteresis.

The RiskAggregator owns one `AlertEngine` per tenant and feeds it every merged account update,
every book snapshot and every deal; it stores and publishes the `Alert`s the engine returns. The
engine is pure (no I/O, no clock: times come from the events), so it is tested and replayed alone.

Why hysteresis. Margin level, drawdown and exposure move with every tick; a value jittering around
a threshold would otherwise raise and clear on every update and bury the desk in an alert storm.
A rule therefore raises when the value crosses its threshold and stays raised until the value has
recovered past the threshold by a relative `band` (a 50% margin-level rule with band 0.05 clears
only above 52.5%). In between nothing happens, so raises and clears strictly alternate per
(rule, subject). `min_interval_s` adds a minimum hold time on top: a raised alert stays raised at
least that long, which caps raises at one per interval even for discrete values such as the
account state, where a relative band cannot help.

Why a cool-down. Hysteresis cannot stop an account that really flaps (in and out of margin call
every few seconds): each crossing is a true raise. With `cooldown_s` set, a raise of the same
(rule, subject) within `cooldown_s` of the first raise it follows is folded into that alert: it
carries `repeats` (how many raises it stands for), the first raise's time (`first_msc`) and the
latest value, and its message says "Raised N times since HH:MM:SS UTC." The store reopens the
alert's row instead of adding one, and delivery, which identifies an alert by its first raise,
sends nothing new. Clears still go out, so screens stay true.

Messages are sentences a dealer reads ("Account 100042 reached margin call at a margin level of
97.00%."), with the value that matters: an account-state alert carries the margin level, not the
state's rank.

Why only raised alerts are stored. A (rule, subject) pair that is not raised needs no memory, so
state grows with what is wrong, not with the number of accounts or symbols. The active set is what
`export` hands to the aggregator's checkpoint; `restore` puts it back after a restart so alerts
already raised are not raised a second time.

Cost. `on_account` evaluates only the account rules (their number is fixed by configuration),
`on_deal` only the large-deal rules for the deal's symbol or any symbol, `on_book` the exposure
rules for each symbol of the snapshot. Nothing rescans the tenant's accounts.

Bad input. A NaN value can neither raise nor clear (it would silently flip comparisons): it is
skipped and counted in `ignored`, as is an unknown account state. Figures with `missing_quotes` are
not judged at all: their equity is half known, so their margin level and drawdown are not yet true.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import numpy as np

from veles.risk.book import BookFigures
from veles.risk.columns import (
    DRAWDOWN,
    MARGIN_LEVEL,
    PROFIT,
    STATE,
    USD_RATE,
    FigureColumns,
)
from veles.risk.events import Deal, DealKind
from veles.risk.score import STATE_MARGIN_CALL, STATE_OK, STATE_STOP_OUT


class JudgedAccount(Protocol):
    """What the account rules read of an account's figures (`AccountFigures` has it all)."""

    @property
    def login(self) -> int: ...
    @property
    def margin_level(self) -> float | None: ...
    @property
    def drawdown(self) -> float: ...
    @property
    def profit(self) -> float: ...
    @property
    def usd_rate(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def updated_msc(self) -> int: ...
    @property
    def missing_quotes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class _Row:
    """One account of `FigureColumns`, as the account rules read it."""

    login: int
    margin_level: float | None
    drawdown: float
    profit: float
    usd_rate: float
    state: str
    updated_msc: int
    missing_quotes: tuple[str, ...] = ()


class AlertKind(StrEnum):
    """What a rule watches, and which value its threshold is compared with."""

    MARGIN_LEVEL = "margin_level"  # account margin level, percent; fires at or below the threshold
    ACCOUNT_STATE = "account_state"  # AccountFigures.state ranked ok=0, margin_call=1, stop_out=2
    DRAWDOWN = "drawdown"  # account equity drawdown from its peak, fraction 0..1
    FLOATING_LOSS = "floating_loss"  # an account's floating loss (P/L below zero) in USD, positive
    SYMBOL_EXPOSURE = "symbol_exposure"  # |book net USD notional| of one symbol
    LARGE_DEAL = "large_deal"  # one trade deal's volume, lots
    TOXIC_FLOW = "toxic_flow"  # an account's toxicity score 0..100 (veles/risk/flow), with a label
    # raised by reconciliation (veles/mt5/reconciliation.py), not by a rule: an account whose
    # figures differ from the MT5 server's own; the value is the largest money drift
    RECONCILIATION_DRIFT = "reconciliation_drift"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


STATE_RANK: Mapping[str, int] = {STATE_OK: 0, STATE_MARGIN_CALL: 1, STATE_STOP_OUT: 2}

T = TypeVar("T")
_MAX_COOLING = 10_000  # cleared alerts remembered for their cool-down, at most

_ACCOUNT_KINDS = frozenset(
    {AlertKind.MARGIN_LEVEL, AlertKind.ACCOUNT_STATE, AlertKind.DRAWDOWN, AlertKind.FLOATING_LOSS}
)
_SYMBOL_KINDS = frozenset({AlertKind.SYMBOL_EXPOSURE, AlertKind.LARGE_DEAL})
#: The labels a toxic_flow rule may name (veles.risk.flow.evidence.Label, less "ordinary").
FLOW_LABELS = ("scalper", "latency_arbitrage", "martingale_grid", "news", "hedged_pair", "syndicate")


def _enum_field(enum: type[StrEnum], value: Any, field: str) -> Any:
    """Coerce a config string to the enum, or fail naming the field and the accepted values."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"{field}: unknown value {value!r} (expected one of: {allowed})") from None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One configured rule; validated at construction so a bad config fails at load, not at 3 a.m.

    `threshold` is in the kind's unit (see `AlertKind`); for `account_state` it is the state rank at
    or above which the rule fires: 1 = margin call or worse, 2 = stop out. `band` is the relative
    hysteresis: a rule that fires at or below the threshold (margin level) clears above
    threshold * (1 + band); the others fire at or above it and clear below threshold * (1 - band).
    `symbol` restricts `symbol_exposure` and `large_deal` rules to one symbol (None = any symbol);
    account rules apply to every account. `min_interval_s` is the minimum time an alert stays raised
    (a clear is deferred to the first update after it). `large_deal` alerts are single events: they
    are raised once per deal, never stored or cleared, so `band` does not apply to them and a hold
    time is rejected. `toxic_flow` rules compare an account's toxicity score (0-100) with the
    threshold; with a `label` only while the account carries that label (its value is 0 without
    it), so "label appears" is a rule with that label and a low threshold.
    """

    id: str
    kind: AlertKind
    threshold: float
    severity: Severity = Severity.WARNING
    symbol: str | None = None
    band: float = 0.05
    min_interval_s: float = 0.0
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id: must be a non-empty string")
        kind = _enum_field(AlertKind, self.kind, "kind")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "severity", _enum_field(Severity, self.severity, "severity"))
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise ValueError(f"threshold: must be a finite number > 0, got {self.threshold!r}")
        if kind is AlertKind.RECONCILIATION_DRIFT:
            raise ValueError("kind: reconciliation_drift alerts are raised by reconciliation, not by a rule")
        if kind is AlertKind.DRAWDOWN and self.threshold > 1.0:
            raise ValueError(f"threshold: drawdown is a fraction 0..1, got {self.threshold!r}")
        if kind is AlertKind.ACCOUNT_STATE and self.threshold not in (1.0, 2.0):
            raise ValueError(
                f"threshold: account_state takes 1 (margin call or worse) or 2 (stop out), "
                f"got {self.threshold!r}"
            )
        if not 0.0 <= self.band < 1.0:
            raise ValueError(f"band: must be in [0, 1), got {self.band!r}")
        if not (math.isfinite(self.min_interval_s) and self.min_interval_s >= 0.0):
            raise ValueError(f"min_interval_s: must be a finite number >= 0, got {self.min_interval_s!r}")
        if kind is AlertKind.LARGE_DEAL and self.min_interval_s:
            raise ValueError("min_interval_s: large_deal alerts are single events and are never held")
        if kind is AlertKind.TOXIC_FLOW and self.threshold > 100.0:
            raise ValueError(f"threshold: toxic_flow is a score from 0 to 100, got {self.threshold!r}")
        if self.label is not None and kind is not AlertKind.TOXIC_FLOW:
            raise ValueError(f"label: only toxic_flow rules take a label, not {kind}")
        if self.label is not None and self.label not in FLOW_LABELS:
            raise ValueError(f"label: unknown label {self.label!r} "
                             f"(expected one of: {', '.join(FLOW_LABELS)})")
        if self.symbol is not None and kind not in _SYMBOL_KINDS:
            raise ValueError(f"symbol: only symbol_exposure and large_deal rules take a symbol, not {kind}")

    @property
    def fires_below(self) -> bool:
        """True when a low value is the danger (margin level), False when a high one is."""
        return self.kind is AlertKind.MARGIN_LEVEL

    @property
    def clear_level(self) -> float:
        """The value the alert must recover past before it clears."""
        factor = 1.0 + self.band if self.fires_below else 1.0 - self.band
        return self.threshold * factor


@dataclass(frozen=True, slots=True)
class Alert:
    """A raise or a clear of one rule for one subject (an account login or a symbol, as text).

    `value` is the observed value in the rule's unit; it is None only when a margin-level alert
    clears because the account no longer uses margin (MT5 has no margin level then).
    """

    rule_id: str
    kind: AlertKind
    severity: Severity
    subject: str
    value: float | None
    threshold: float
    status: AlertStatus
    time_msc: int
    message: str
    repeats: int = 1  # raises folded into this alert by the cool-down (see `AlertEngine`)
    first_msc: int = 0  # when the first of them was raised (0: this one, `time_msc`)

    @property
    def first(self) -> int:
        """The time of the first raise this alert stands for: what identifies it for delivery."""
        return self.first_msc or self.time_msc


def default_rules(margin_call: float, stop_out: float) -> list[AlertRule]:
    """The rules a broker's risk desk expects out of the box.

    `margin_call` and `stop_out` are the tenant's margin levels in percent. Accounts in groups with
    other levels (or money-mode levels) are better watched with `account_state` rules, which follow
    each account's own group settings.
    """
    return [
        AlertRule("margin_call", AlertKind.MARGIN_LEVEL, margin_call, Severity.WARNING),
        AlertRule("stop_out", AlertKind.MARGIN_LEVEL, stop_out, Severity.CRITICAL),
        AlertRule("drawdown_30", AlertKind.DRAWDOWN, 0.30, Severity.WARNING),
        AlertRule("symbol_exposure_5m", AlertKind.SYMBOL_EXPOSURE, 5_000_000.0, Severity.WARNING),
        AlertRule("large_deal_50", AlertKind.LARGE_DEAL, 50.0, Severity.INFO),
    ]


class AlertEngine:
    """Evaluates a tenant's rules against its live figures; see the module docstring."""

    def __init__(self, rules: Iterable[AlertRule], cooldown_s: float = 0.0) -> None:
        if not (math.isfinite(cooldown_s) and cooldown_s >= 0.0):
            raise ValueError(f"cooldown_s: must be a finite number >= 0, got {cooldown_s!r}")
        self._cooldown_ms = cooldown_s * 1000.0
        # Cleared alerts inside their cool-down, by (rule, subject): a raise of the same key before
        # the cool-down ends is folded into them (a count and the latest value), not a new alert.
        self._cooling: dict[tuple[str, str], Alert] = {}
        self._rules: dict[str, AlertRule] = {}
        for rule in rules:
            if rule.id in self._rules:
                raise ValueError(f"id: duplicate rule id {rule.id!r}")
            self._rules[rule.id] = rule
        ordered = list(self._rules.values())
        self._account_rules = [r for r in ordered if r.kind in _ACCOUNT_KINDS]
        self._exposure_any = [r for r in ordered if r.kind is AlertKind.SYMBOL_EXPOSURE and r.symbol is None]
        self._exposure_by_symbol = _by_symbol(r for r in ordered if r.kind is AlertKind.SYMBOL_EXPOSURE)
        self._deal_any = [r for r in ordered if r.kind is AlertKind.LARGE_DEAL and r.symbol is None]
        self._deal_by_symbol = _by_symbol(r for r in ordered if r.kind is AlertKind.LARGE_DEAL)
        self._flow_rules = [r for r in ordered if r.kind is AlertKind.TOXIC_FLOW]
        self._active: dict[tuple[str, str], Alert] = {}
        # The raised exposure keys, so a book snapshot finds symbols gone flat without scanning
        # the (possibly large) set of raised account alerts.
        self._exposure_keys: dict[tuple[str, str], None] = {}  # ordered, so output order is stable
        self._ignored = 0

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return tuple(self._rules.values())

    @property
    def ignored(self) -> int:
        """Values skipped as invalid (NaN, unknown account state) since the engine started."""
        return self._ignored

    def active(self) -> list[Alert]:
        """The alerts currently raised, oldest first."""
        return list(self._active.values())

    def forget(self, subjects: Iterable[str]) -> list[tuple[str, str]]:
        """Drop the raised alerts of `subjects` (accounts that left the book: nothing can clear
        them any more) without a clear; returns their (rule, subject) keys for the caller to
        resolve where it stores them."""
        wanted = set(subjects)
        gone = [key for key in self._active if key[1] in wanted and key not in self._exposure_keys]
        for key in gone:
            del self._active[key]
        return gone

    def on_columns(self, columns: FigureColumns) -> list[Alert]:
        """`on_account` of every account of `columns`, in their order, with the same result: the
        rules' comparisons run on the whole columns first, and only the accounts that may raise or
        clear something (or hold a value the rules cannot judge) go through `on_account`.

        Why that is the same: an account rule changes nothing unless its value breaches the
        threshold (not raised yet), recovers past the clear level (raised), or is NaN / an unknown
        state (counted in `ignored`); every other account yields nothing, as `on_account` would."""
        if not self._account_rules or not len(columns):
            return []
        values = columns.values
        level_of_state = np.array([STATE_RANK.get(label, math.nan) for label in columns.labels], np.float64)
        logins = columns.login
        subjects_active: dict[str, list[int]] = {}
        for rule_id, subject in self._active:
            subjects_active.setdefault(rule_id, []).append(int(subject) if subject.isdigit() else -1)
        candidate = np.zeros(len(columns), np.bool_)
        with np.errstate(invalid="ignore"):
            for rule in self._account_rules:
                if rule.kind is AlertKind.MARGIN_LEVEL:
                    level = np.where(columns.has_level, values[:, MARGIN_LEVEL], math.inf)
                elif rule.kind is AlertKind.DRAWDOWN:
                    level = values[:, DRAWDOWN]
                elif rule.kind is AlertKind.FLOATING_LOSS:
                    level = np.maximum(0.0, -values[:, PROFIT] * values[:, USD_RATE])
                else:
                    level = level_of_state[columns.codes[:, STATE]]
                active = np.isin(logins, np.array(subjects_active.get(rule.id, ()), np.int64))
                if rule.fires_below:
                    moves = np.where(active, level > rule.clear_level, level <= rule.threshold)
                else:
                    moves = np.where(active, level < rule.clear_level, level >= rule.threshold)
                candidate |= moves | np.isnan(level)
        candidate &= columns.complete
        out: list[Alert] = []
        if not candidate.any():
            return out
        labels = columns.labels
        for row in np.flatnonzero(candidate).tolist():
            value = values[row].tolist()
            out.extend(self.on_account(_Row(
                int(logins[row]), value[MARGIN_LEVEL] if columns.has_level[row] else None,
                value[DRAWDOWN], value[PROFIT], value[USD_RATE], labels[columns.codes[row, STATE]],
                int(columns.updated_msc[row]))))
        return out

    def on_account(self, figures: JudgedAccount) -> list[Alert]:
        """Judge one account's fresh figures against the account rules."""
        if not self._account_rules or figures.missing_quotes:
            return []
        out: list[Alert] = []
        subject = str(figures.login)
        for rule in self._account_rules:
            value: float | None
            if rule.kind is AlertKind.MARGIN_LEVEL:
                value = figures.margin_level
                level = math.inf if value is None else value
            elif rule.kind is AlertKind.DRAWDOWN:
                value = level = figures.drawdown
            elif rule.kind is AlertKind.FLOATING_LOSS:
                # In USD: one tenant-wide threshold must mean the same for a JPY and a USD account.
                value = level = max(0.0, -figures.profit * figures.usd_rate)
            else:
                rank = STATE_RANK.get(figures.state)
                if rank is None:
                    self._ignored += 1
                    continue
                level = float(rank)
                value = figures.margin_level  # what the desk wants to read: the level, not the rank
            status = self._transition(rule, subject, level, figures.updated_msc)
            if status is not None:
                text = _account_message(rule, subject, value, status, figures.state)
                out.append(self._record(rule, subject, value, status, figures.updated_msc, text))
        return out

    @property
    def judges_flow(self) -> bool:
        """Whether any rule watches toxic flow (the aggregator skips the work otherwise)."""
        return bool(self._flow_rules)

    def on_flow(self, login: int, score: float, labels: Iterable[str], time_msc: int) -> list[Alert]:
        """Judge one account's fresh toxicity (score 0-100 and its labels) against the
        toxic_flow rules: a rule's value is the score, or 0 while a label it names is absent."""
        if not self._flow_rules:
            return []
        held = set(labels)
        out: list[Alert] = []
        subject = str(login)
        for rule in self._flow_rules:
            value = score if rule.label is None or rule.label in held else 0.0
            status = self._transition(rule, subject, value, time_msc)
            if status is None:
                continue
            what = f"{rule.label.replace('_', ' ')} flow" if rule.label else "toxic flow"
            shown = ", ".join(sorted(held)) or "no label"
            if status is AlertStatus.RAISED:
                text = (f"Account {subject} shows {what}: toxicity score {value:.1f} ({shown}), at or "
                        f"above the {rule.threshold:g} limit.")
            else:
                text = (f"Account {subject}'s {what} is back to a score of {value:.1f} ({shown}), below "
                        f"{rule.clear_level:g}.")
            out.append(self._record(rule, subject, value, status, time_msc, text))
        return out

    def on_book(self, book: BookFigures, time_msc: int) -> list[Alert]:
        """Judge the book's net exposure per symbol; a symbol gone from the book counts as flat.

        `time_msc` stamps the alerts (BookFigures carries no time of its own).
        """
        if not (self._exposure_any or self._exposure_by_symbol):
            return []
        out: list[Alert] = []
        seen: set[str] = set()
        for exposure in book.exposure:
            seen.add(exposure.symbol)
            rules = self._exposure_by_symbol.get(exposure.symbol, ())
            for rule in (*self._exposure_any, *rules):
                self._judge_exposure(rule, exposure.symbol, exposure.usd_notional, time_msc, out)
        for rule_id, symbol in [key for key in self._exposure_keys if key[1] not in seen]:
            self._judge_exposure(self._rules[rule_id], symbol, 0.0, time_msc, out)
        return out

    def on_deal(self, deal: Deal) -> list[Alert]:
        """Raise one event alert per large-deal rule that a trade deal meets (balance ops never do).

        The engine keeps no memory of deals: call it once per applied deal (AccountState already
        rejects duplicates and replays by ticket).
        """
        if deal.kind not in (DealKind.BUY, DealKind.SELL):
            return []
        rules = (*self._deal_any, *self._deal_by_symbol.get(deal.symbol, ()))
        if not rules:
            return []
        if math.isnan(deal.volume):
            self._ignored += 1
            return []
        subject = str(deal.login)
        return [
            Alert(
                rule.id,
                rule.kind,
                rule.severity,
                subject,
                deal.volume,
                rule.threshold,
                AlertStatus.RAISED,
                deal.time_msc,
                f"Account {subject} {'bought' if deal.kind is DealKind.BUY else 'sold'} {deal.volume:g} "
                f"lots of {deal.symbol} in deal {deal.ticket}, at or above the {rule.threshold:g}-lot limit.",
            )
            for rule in rules
            if deal.volume >= rule.threshold
        ]

    def export(self) -> list[dict[str, Any]]:
        """The active set as plain dicts (JSON-ready: enums become their string values)."""
        return [
            asdict(alert)
            | {"kind": alert.kind.value, "severity": alert.severity.value, "status": alert.status.value}
            for alert in self._active.values()
        ]

    def restore(self, exported: Iterable[Mapping[str, Any]]) -> None:
        """Replace the active set with an `export`, so a restarted engine does not re-raise it.

        Alerts of rules that no longer exist (or changed kind) are dropped: nothing could clear them.
        Entries that are not raised are dropped too (an export holds only raised alerts).
        A malformed entry raises ValueError naming the field (nothing is replaced then).
        """
        active: dict[tuple[str, str], Alert] = {}
        for item in exported:
            alert = _alert_from_dict(item)
            rule = self._rules.get(alert.rule_id)
            if (
                rule is not None
                and rule.kind is alert.kind
                and alert.kind is not AlertKind.LARGE_DEAL
                and alert.status is AlertStatus.RAISED
            ):
                active[(alert.rule_id, alert.subject)] = alert
        self._active = active
        self._exposure_keys = dict.fromkeys(
            key for key, alert in active.items() if alert.kind is AlertKind.SYMBOL_EXPOSURE
        )

    # -- internals ----------------------------------------------------------------------------

    def _judge_exposure(
        self, rule: AlertRule, symbol: str, notional: float, time_msc: int, out: list[Alert]
    ) -> None:
        size = abs(notional)
        status = self._transition(rule, symbol, size, time_msc)
        if status is None:
            return
        if status is AlertStatus.RAISED:
            side = "long" if notional >= 0 else "short"
            text = (f"The book's net {symbol} exposure is ${size:,.0f} {side}, at or above the "
                    f"${rule.threshold:,.0f} limit.")
        else:
            text = (f"The book's net {symbol} exposure is back to ${size:,.0f}, below "
                    f"${rule.clear_level:,.0f}.")
        out.append(self._record(rule, symbol, size, status, time_msc, text))

    def _transition(self, rule: AlertRule, subject: str, value: float, time_msc: int) -> AlertStatus | None:
        """Decide, without changing anything, whether `value` raises or clears (rule, subject)."""
        if math.isnan(value):
            self._ignored += 1
            return None
        raised = self._active.get((rule.id, subject))
        if raised is None:
            breached = value <= rule.threshold if rule.fires_below else value >= rule.threshold
            return AlertStatus.RAISED if breached else None
        recovered = value > rule.clear_level if rule.fires_below else value < rule.clear_level
        if not recovered:
            return None
        held_ms = time_msc - raised.time_msc
        # A clock that went backwards (e.g. restored from another host) must not pin the alert.
        if 0 <= held_ms < rule.min_interval_s * 1000.0:
            return None
        return AlertStatus.CLEARED

    def _record(
        self,
        rule: AlertRule,
        subject: str,
        value: float | None,
        status: AlertStatus,
        time_msc: int,
        text: str,
    ) -> Alert:
        key = (rule.id, subject)
        repeats, first_msc = 1, 0
        if status is AlertStatus.RAISED:
            cooled = self._cooling.pop(key, None)
            if cooled is not None and 0 <= time_msc - cooled.first < self._cooldown_ms:
                repeats, first_msc = cooled.repeats + 1, cooled.first
                since = datetime.fromtimestamp(first_msc / 1000, UTC)
                text = f"{text} Raised {repeats} times since {since:%H:%M:%S} UTC."
        alert = Alert(
            rule.id, rule.kind, rule.severity, subject, value, rule.threshold, status, time_msc, text,
            repeats, first_msc,
        )
        if status is AlertStatus.RAISED:
            self._active[key] = alert
            if rule.kind is AlertKind.SYMBOL_EXPOSURE:
                self._exposure_keys[key] = None
        else:
            raised = self._active.pop(key)
            self._exposure_keys.pop(key, None)
            if self._cooldown_ms > 0:
                self._cool(key, raised, time_msc)
        return alert

    def _cool(self, key: tuple[str, str], raised: Alert, time_msc: int) -> None:
        """Remember a cleared alert for its cool-down; entries of the same rule past theirs are
        dropped first, and the map never holds more than `_MAX_COOLING` (the oldest go).

        Only the same rule's: rules do not share a clock. Account alerts carry the feed's time
        (the MT5 server's, hours off UTC on many servers, or a simulator's), exposure alerts the
        wall clock of the book snapshot; purging by one clock against the other wiped every
        account's cool-down at each exposure clear (found by `veles chaos`: a flapping account
        then made a new alert row at each raise instead of one row with a count)."""
        self._cooling.pop(key, None)
        self._cooling[key] = raised
        rule = key[0]
        for old_key in [k for k, a in self._cooling.items()
                        if k[0] == rule and time_msc - a.first >= self._cooldown_ms]:
            del self._cooling[old_key]
        while len(self._cooling) > _MAX_COOLING:
            del self._cooling[next(iter(self._cooling))]


def _by_symbol(rules: Iterable[AlertRule]) -> dict[str, list[AlertRule]]:
    index: dict[str, list[AlertRule]] = {}
    for rule in rules:
        if rule.symbol is not None:
            index.setdefault(rule.symbol, []).append(rule)
    return index


def _account_message(
    rule: AlertRule, login: str, value: float | None, status: AlertStatus, state: str
) -> str:
    """A sentence a dealer reads: what happened to which account, with the value that matters."""
    raised = status is AlertStatus.RAISED
    if rule.kind is AlertKind.ACCOUNT_STATE:
        level = "" if value is None else f" at a margin level of {value:.2f}%"
        if raised:
            reached = "margin call" if rule.threshold < 2 else "stop out"
            return f"Account {login} reached {reached}{level}."
        now = "" if value is None else f" (margin level {value:.2f}%)"
        return f"Account {login} is back to {state.replace('_', ' ')}{now}."
    if rule.kind is AlertKind.MARGIN_LEVEL:
        if value is None:
            return f"Account {login} no longer uses margin."
        if raised:
            return (f"Account {login}'s margin level fell to {value:.2f}%, at or below the "
                    f"{rule.threshold:.2f}% limit.")
        return f"Account {login}'s margin level recovered to {value:.2f}%, above {rule.clear_level:.2f}%."
    if rule.kind is AlertKind.FLOATING_LOSS:
        assert value is not None
        if raised:
            return (f"Account {login} has a floating loss of ${value:,.2f}, at or above the "
                    f"${rule.threshold:,.2f} limit.")
        return f"Account {login}'s floating loss is back to ${value:,.2f}, below ${rule.clear_level:,.2f}."
    assert value is not None
    if raised:
        return (f"Account {login}'s equity is {value:.1%} below its peak, at or above the "
                f"{rule.threshold:.1%} limit.")
    return f"Account {login}'s equity recovered to {value:.1%} below its peak, under {rule.clear_level:.1%}."


def _alert_from_dict(item: Mapping[str, Any]) -> Alert:
    return Alert(
        rule_id=_field(item, "rule_id", str),
        kind=_field(item, "kind", lambda v: _enum_field(AlertKind, v, "kind")),
        severity=_field(item, "severity", lambda v: _enum_field(Severity, v, "severity")),
        subject=_field(item, "subject", str),
        value=_field(item, "value", lambda v: None if v is None else float(v)),
        threshold=_field(item, "threshold", float),
        status=_field(item, "status", lambda v: _enum_field(AlertStatus, v, "status")),
        time_msc=_field(item, "time_msc", int),
        message=_field(item, "message", str),
        repeats=_field(item, "repeats", int) if "repeats" in item else 1,
        first_msc=_field(item, "first_msc", int) if "first_msc" in item else 0,
    )


def _field(item: Mapping[str, Any], name: str, convert: Callable[[Any], T]) -> T:
    """Read and convert one exported field; any failure becomes a ValueError naming the field."""
    if name not in item:
        raise ValueError(f"{name}: missing from exported alert")
    try:
        return convert(item[name])
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(f"{name}: ") else f"{name}: {message}") from None
    except TypeError as error:
        raise ValueError(f"{name}: {error}") from None
