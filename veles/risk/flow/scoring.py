"""From detector findings to a 0-100 toxicity score, its breakdown, and labels.

    points(d) = WEIGHTS[d] * strength(d)          (strength 0..1, 1 once d's thresholds are met)
    score     = min(100, max points + 0.25 * the other points)

The strongest behaviour sets the score and others add a little, so one clear behaviour scores
its weight and a mix of half-met ones cannot outrank it. Weights rank what a behaviour costs a
B-book: latency arbitrage is riskless profit against stale prices, cross-account pairs and
syndicates take the broker's money by coordination, martingale/grid concentrates tail risk, news
and scalping cost spread and hedging. Sharp deals add evidence without a label of their own.

Labels are the fired detectors' labels; `primary` is the one a dealer acts on first (PRIORITY):
a latency arbitrageur also trades around news and holds for seconds, but its news and scalping
are symptoms of the arbitrage, not separate behaviours. The margin-pressure score in
`veles.risk.score` is unrelated and stays the account's "margin risk".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from veles.risk.flow.evidence import Finding, Label

WEIGHTS: dict[str, float] = {
    "latency_arbitrage": 100.0,
    "hedged_pair": 90.0,
    "syndicate": 80.0,
    "martingale_grid": 70.0,
    "news": 60.0,
    "scalping": 55.0,
    "sharp_deals": 40.0,
}
PRIORITY = (
    Label.LATENCY_ARB,
    Label.HEDGED_PAIR,
    Label.SYNDICATE,
    Label.MARTINGALE_GRID,
    Label.NEWS,
    Label.SCALPER,
)


@dataclass(frozen=True, slots=True)
class Toxicity:
    """One account's toxicity: score, labels, and every detector's finding (the breakdown)."""

    login: int
    score: float
    primary: Label
    labels: tuple[Label, ...]
    findings: tuple[Finding, ...]
    since_msc: int  # when the primary label first fired (0 for ordinary)

    def breakdown(self) -> dict[str, float]:
        """Points per detector, as the score formula adds them."""
        return {f.detector: round(WEIGHTS[f.detector] * f.strength, 1) for f in self.findings}


def toxicity(login: int, findings: Iterable[Finding]) -> Toxicity:
    """Combine one account's findings (see the module docstring)."""
    found = tuple(findings)
    points = sorted((WEIGHTS[f.detector] * f.strength for f in found), reverse=True)
    score = min(100.0, points[0] + 0.25 * sum(points[1:])) if points else 0.0
    fired = {f.label: f for f in found if f.fired and f.label is not None}
    labels = tuple(label for label in PRIORITY if label in fired)
    primary = labels[0] if labels else Label.ORDINARY
    since = fired[primary].since_msc if labels else 0
    return Toxicity(login, round(score, 1), primary, labels, found, since)
