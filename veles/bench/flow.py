"""`veles bench flow`: toxic-flow detectors measured against the simulator's ground truth.

The simulated broker runs for M simulated minutes as fast as the CPU allows (no wall clock), with
every account's behaviour known (`SimulatedBroker.styles`). Each batch goes two ways in the same
process:

* to the engine's per-account risk core, as the account hosts apply it: each account's
  `AccountState` gets the batch's quotes it needs and its deals;
* to a `FlowMonitor` with every detector, plus the simulator's calendar.

At the end every account's primary label is compared with the label of its behaviour: per label
precision, recall, F1 and the median time from the start to the label's first firing, and the
share of ordinary accounts given any toxic label. Every simulated second the accounts whose flow
changed are scored, as the live pipeline (`actors/flow_pipeline.py`, FLOW_PERIOD_S) does, and
that scoring counts as detector time. The CPU time of the detectors is reported
against the CPU time of the AccountState updates measured in the same run (the engine does more
than that per update - messaging, pickling - so the ratio overstates the detectors' share).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from veles.mt5.simulator import SimulatedBroker
from veles.mt5.traders import Style, parse_mix
from veles.risk.account import AccountState
from veles.risk.events import Quote
from veles.risk.flow.evidence import Label
from veles.risk.flow.monitor import FlowMonitor, FlowRules

START_MSC = 1_767_261_600_000  # 2026-01-01 10:00 UTC, away from the daily rollover
SCORE_PERIOD_S = 1.0  # changed accounts are scored this often, as `actors.flow_pipeline` does
LABELS = tuple(label for label in Label if label is not Label.ORDINARY)


def load_mix(path: Path) -> dict[Style, float]:
    """A population mix from a JSON file {"style": weight, ...}; ValueError when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the mix {path}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the mix {path} must be a JSON object of style names to weights")
    return parse_mix(data)


class _Engine:
    """The risk core as the account hosts run it: one AccountState per account, quotes routed to
    the accounts that need them."""

    def __init__(self, broker: SimulatedBroker) -> None:
        self.board: dict[str, Quote] = dict(broker.market.quotes())
        specs = {spec.name: spec for spec in broker.symbols()}
        self.states = {s.login: AccountState(s, specs, self.board) for s in broker.accounts()}
        self.needs: dict[str, set[int]] = {}
        for login, state in self.states.items():
            self._index(login, frozenset(), state.symbols_needed)

    def _index(self, login: int, before: frozenset[str], after: frozenset[str]) -> None:
        for symbol in before - after:
            self.needs.get(symbol, set()).discard(login)
        for symbol in after - before:
            self.needs.setdefault(symbol, set()).add(login)

    def apply(self, quotes: tuple[Quote, ...], deals: tuple[Any, ...]) -> None:
        board = self.board
        touched: dict[int, list[Quote]] = {}
        for quote in quotes:
            board[quote.symbol] = quote
            for login in self.needs.get(quote.symbol, ()):
                touched.setdefault(login, []).append(quote)
        states = self.states
        for login, mine in touched.items():
            states[login].apply_quotes(mine)
        for deal in deals:
            state = states[deal.login]
            before = state.symbols_needed
            state.apply_deal(deal)
            after = state.symbols_needed
            if after != before:
                self._index(deal.login, before, after)
                missing = [board[s] for s in after - before if s in board]
                if missing:
                    state.apply_quotes(missing)


def run(
    seed: int,
    accounts: int,
    minutes: float,
    *,
    mix: Mapping[Style, float] | None = None,
    rules: FlowRules | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Run the simulation through the engine's risk core and the detectors; the measurements."""
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    broker = SimulatedBroker("flow", accounts=accounts, seed=seed, start_msc=START_MSC, warmup=0.0, mix=mix)
    truth = {login: style.label for login, style in broker.styles().items()}
    engine = _Engine(broker)
    monitor = FlowMonitor(rules)
    steps = round(minutes * 60 / broker.interval)
    every = max(1, round(SCORE_PERIOD_S / broker.interval))
    engine_cpu = detector_cpu = 0.0
    scored = 0
    clock = time.process_time
    started = time.monotonic()
    for step in range(1, steps + 1):
        batch = broker.poll()
        t0 = clock()
        engine.apply(batch.quotes, batch.deals)
        t1 = clock()
        monitor.on_news(broker.calendar)
        monitor.on_quotes(batch.quotes)
        monitor.on_deals(batch.deals)
        monitor.advance(broker.market.now_msc)
        if step % every == 0:  # as the live pipeline: changed accounts scored once a period
            for login in monitor.take_changed():
                monitor.toxicity(login)
                scored += 1
        t2 = clock()
        engine_cpu += t1 - t0
        detector_cpu += t2 - t1
        if step % round(60 / broker.interval) == 0:
            progress(f"minute {step * broker.interval / 60:.0f}/{minutes:g}: "
                     f"{time.monotonic() - started:.0f} s wall")
    return _score(truth, monitor, steps, engine_cpu, detector_cpu) | {
        "seed": seed, "accounts": accounts, "minutes": minutes, "batches": steps, "scored": scored,
        "wall_s": round(time.monotonic() - started, 1),
    }


def _score(
    truth: Mapping[int, Label], monitor: FlowMonitor, batches: int, engine_cpu: float, detector_cpu: float
) -> dict[str, Any]:
    predicted = {login: monitor.toxicity(login) for login in truth}
    confusion: Counter[tuple[str, str]] = Counter()
    for login, label in truth.items():
        confusion[(label.value, predicted[login].primary.value)] += 1
    labels: dict[str, dict[str, float | int | None]] = {}
    for label in LABELS:
        actual = {login for login, t in truth.items() if t is label}
        flagged = {login for login, tox in predicted.items() if tox.primary is label}
        hits = actual & flagged
        precision = len(hits) / len(flagged) if flagged else (1.0 if not actual else 0.0)
        recall = len(hits) / len(actual) if actual else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        delays = [(predicted[login].since_msc - START_MSC) / 1000 for login in hits]
        labels[label.value] = {
            "accounts": len(actual), "flagged": len(flagged), "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(f1, 4),
            "median_detect_s": round(statistics.median(delays), 1) if delays else None,
        }
    ordinary = [login for login, t in truth.items() if t is Label.ORDINARY]
    false_positives = sum(1 for login in ordinary if predicted[login].primary is not Label.ORDINARY)
    return {
        "labels": labels,
        "ordinary_accounts": len(ordinary),
        "ordinary_false_positive_rate": round(false_positives / len(ordinary), 4) if ordinary else 0.0,
        "confusion": {f"{t}->{p}": n for (t, p), n in sorted(confusion.items())},
        "engine_cpu_us_per_batch": round(engine_cpu / batches * 1e6, 1),
        "detector_cpu_us_per_batch": round(detector_cpu / batches * 1e6, 1),
        "detector_vs_engine": round(detector_cpu / engine_cpu, 4) if engine_cpu else None,
    }


def report(result: Mapping[str, Any]) -> str:
    """The per-label table a person reads."""
    lines = [
        f"seed {result['seed']}, {result['accounts']} accounts, {result['minutes']:g} simulated minutes",
        f"{'label':<18} {'accounts':>8} {'flagged':>8} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'detect s':>9}",
    ]
    for name, row in result["labels"].items():
        detect = "-" if row["median_detect_s"] is None else f"{row['median_detect_s']:.0f}"
        lines.append(
            f"{name:<18} {row['accounts']:>8} {row['flagged']:>8} {row['precision']:>9.3f} "
            f"{row['recall']:>7.3f} {row['f1']:>6.3f} {detect:>9}"
        )
    lines.append(
        f"false positives on ordinary accounts: {result['ordinary_false_positive_rate']:.2%} "
        f"of {result['ordinary_accounts']}"
    )
    lines.append(
        f"CPU per batch: detectors {result['detector_cpu_us_per_batch']:.0f} us, AccountState updates "
        f"{result['engine_cpu_us_per_batch']:.0f} us, ratio {result['detector_vs_engine']}"
    )
    return "\n".join(lines)
