"""The aggregator runs the toxic-flow detectors: rows carry score and labels, a trader's profile
is there to ask for, and toxic_flow rules raise when a label appears or a score crosses."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from actors.risk_aggregator import BookPublisher
from tests.actors.support import account_figures
from veles.risk.alerts import AlertEngine, AlertKind, AlertRule, Severity
from veles.risk.events import Deal, DealEntry, DealKind, Quote

T0 = 1_790_000_000_000
_tickets = itertools.count(5_000)


def _scalps(login: int, count: int, start: int = T0, hold_ms: int = 10_000) -> list[Deal]:
    """`count` round trips of EURUSD held `hold_ms` each, one a minute."""
    deals = []
    for n in range(count):
        opened = next(_tickets)
        at = start + n * 60_000
        deals.append(Deal(opened, login, DealKind.BUY, at, DealEntry.IN, "EURUSD", 1.0, 1.1, opened))
        deals.append(Deal(next(_tickets), login, DealKind.SELL, at + hold_ms, DealEntry.OUT, "EURUSD", 1.0,
                          1.1001, opened, 10.0))
    return deals


def _quote(msc: int) -> Quote:
    return Quote("EURUSD", 1.1, 1.1002, msc)


def _publisher(*rules: AlertRule) -> BookPublisher:
    publisher = BookPublisher(tenant_id=1)
    publisher.alerts = AlertEngine(rules)
    return publisher


async def test_rows_carry_the_score_and_labels_and_the_profile_explains_them() -> None:
    figures = account_figures()
    other = dataclasses.replace(figures, login=figures.login + 1)
    publisher = _publisher()
    publisher.apply([figures, other], sent_at=1.0)
    publisher.apply_flow([_quote(T0)], _scalps(figures.login, 8))
    diff = await publisher.publish()
    assert diff is not None
    rows = {row["login"]: row for row in diff["accounts"]}
    assert rows[figures.login]["flow_label"] == "scalper"
    assert rows[figures.login]["flow_labels"] == "scalper"
    assert rows[figures.login]["toxicity"] == 55.0  # the scalping weight at full strength
    assert rows[figures.login]["flow_pnl"] == 80.0  # eight closed trades of 10
    assert rows[other.login]["flow_label"] == "ordinary"
    assert rows[other.login]["toxicity"] == 0.0
    snapshot = {row["login"]: row for row in publisher.snapshot()["accounts"]}
    assert snapshot[figures.login]["toxicity"] == 55.0
    profile = publisher.flow_profile(figures.login)
    assert profile is not None
    scalping = next(f for f in profile["findings"] if f["detector"] == "scalping")
    assert scalping["fired"]
    assert scalping["points"] == 55.0
    assert scalping["numbers"]["short_trades"] == 8
    assert len(profile["evidence"]) == 8  # the eight closing deals
    assert [h["trips"] for h in profile["holds"]] == [0, 0, 8, 0, 0, 0, 0]  # 10 s: the 5-15 s bin
    assert [m["horizon_s"] for m in profile["markout"]] == [1, 5, 60]
    assert publisher.flow_profile(999) is None  # not in the book


async def test_a_label_rule_raises_when_the_label_appears_not_before() -> None:
    figures = account_figures()
    rule = AlertRule("scalpers", AlertKind.TOXIC_FLOW, 1.0, Severity.WARNING, label="scalper")
    publisher = _publisher(rule)
    publisher.apply([figures], sent_at=1.0)
    deals = _scalps(figures.login, 8)
    publisher.apply_flow([_quote(T0)], deals[:14])  # seven round trips: one short of the label
    await publisher.publish()
    assert list(publisher.recent_alerts) == []
    publisher.apply_flow([], deals[14:])
    await publisher.publish()
    (alert,) = publisher.recent_alerts
    assert (alert["rule_id"], alert["kind"], alert["status"], alert["subject"]) == (
        "scalpers", "toxic_flow", "raised", str(figures.login))
    assert alert["value"] == 55.0
    assert "scalper flow" in alert["message"]


async def test_a_score_rule_raises_when_the_score_crosses_its_threshold() -> None:
    figures = account_figures()
    publisher = _publisher(AlertRule("toxic_40", AlertKind.TOXIC_FLOW, 40.0))
    publisher.apply([figures], sent_at=1.0)
    deals = _scalps(figures.login, 8)
    publisher.apply_flow([_quote(T0)], deals[:10])  # 5 of 8 short trips: 55 x 5/8 = 34.4
    await publisher.publish()
    assert list(publisher.recent_alerts) == []
    publisher.apply_flow([], deals[10:12])  # 6 of 8: 41.2
    await publisher.publish()
    (alert,) = publisher.recent_alerts
    assert alert["rule_id"] == "toxic_40"
    assert alert["value"] == 41.2


@pytest.mark.parametrize(
    ("kind", "threshold", "label", "message"),
    [
        (AlertKind.TOXIC_FLOW, 101.0, None, "threshold: toxic_flow is a score from 0 to 100"),
        (AlertKind.TOXIC_FLOW, 50.0, "whale", "label: unknown label 'whale'"),
        (AlertKind.MARGIN_LEVEL, 50.0, "scalper", "label: only toxic_flow rules take a label"),
    ],
)
def test_a_toxic_flow_rule_refuses_a_score_over_100_and_an_unknown_label(
    kind: AlertKind, threshold: float, label: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        AlertRule("x", kind, threshold, label=label)
