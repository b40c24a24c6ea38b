"""Alert rules: raise once on crossing, clear only past the hysteresis band, survive a restart."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veles.risk.account import AccountFigures
from veles.risk.alerts import (
    Alert,
    AlertEngine,
    AlertKind,
    AlertRule,
    AlertStatus,
    Severity,
    default_rules,
)
from veles.risk.book import BookExposure, BookFigures
from veles.risk.events import Deal, DealEntry, DealKind

RAISED, CLEARED = AlertStatus.RAISED, AlertStatus.CLEARED


def _figures(login: int = 100042, time_msc: int = 1, **changes: object) -> AccountFigures:
    base = AccountFigures(
        login=login,
        group="real",
        book="B",
        currency="USD",
        leverage=100,
        balance=1000.0,
        credit=0.0,
        equity=1000.0,
        profit=0.0,
        margin=100.0,
        free_margin=900.0,
        margin_level=1000.0,
        state="ok",
        realized_pnl=0.0,
        peak_equity=1000.0,
        drawdown=0.0,
        positions=1,
        exposure=(),
        usd_rate=1.0,
        risk_score=0.0,
        updated_msc=time_msc,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _book(*notionals: tuple[str, float]) -> BookFigures:
    exposure = tuple(BookExposure(s, n / 1e5, n, 0.0, 0.0, n / 1e5, n) for s, n in notionals)
    return BookFigures(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, exposure, (), (), ())


def _deal(volume: float, symbol: str = "EURUSD", kind: DealKind = DealKind.BUY, ticket: int = 7) -> Deal:
    return Deal(ticket, 100042, kind, 5_000, DealEntry.IN, symbol, volume, 1.1, ticket)


def _statuses(alerts: list[Alert]) -> list[tuple[str, str, AlertStatus]]:
    return [(a.rule_id, a.subject, a.status) for a in alerts]


STOP_OUT = AlertRule("stop_out", AlertKind.MARGIN_LEVEL, 50.0, Severity.CRITICAL, band=0.05)


def test_margin_level_raises_once_and_clears_above_the_band() -> None:
    engine = AlertEngine([STOP_OUT])
    assert engine.on_account(_figures(margin_level=60.0)) == []
    [alert] = engine.on_account(_figures(margin_level=48.2, time_msc=10))
    assert (alert.status, alert.subject, alert.value, alert.threshold, alert.time_msc) == (
        RAISED,
        "100042",
        48.2,
        50.0,
        10,
    )
    assert alert.severity is Severity.CRITICAL
    assert alert.message == "Account 100042's margin level fell to 48.20%, at or below the 50.00% limit."
    assert engine.on_account(_figures(margin_level=40.0)) == []  # still down: no second raise
    assert engine.on_account(_figures(margin_level=52.5)) == []  # inside the band: stays raised
    assert engine.active() == [alert]
    [cleared] = engine.on_account(_figures(margin_level=52.6, time_msc=20))
    assert (cleared.status, cleared.value, cleared.time_msc) == (CLEARED, 52.6, 20)
    assert "above 52.50%" in cleared.message
    assert engine.active() == []


def test_margin_level_clears_when_the_account_no_longer_uses_margin() -> None:
    engine = AlertEngine([STOP_OUT])
    engine.on_account(_figures(margin_level=30.0))
    assert engine.on_account(_figures(login=2, margin_level=None)) == []  # no margin never raises
    [cleared] = engine.on_account(_figures(margin_level=None))
    assert (cleared.status, cleared.value) == (CLEARED, None)


def test_account_state_rules_follow_the_reported_state() -> None:
    engine = AlertEngine(
        [
            AlertRule("mc", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING, band=0.0),
            AlertRule("so", AlertKind.ACCOUNT_STATE, 2, Severity.CRITICAL, band=0.0),
        ]
    )
    assert _statuses(engine.on_account(_figures(state="margin_call"))) == [("mc", "100042", RAISED)]
    assert _statuses(engine.on_account(_figures(state="stop_out"))) == [("so", "100042", RAISED)]
    assert _statuses(engine.on_account(_figures(state="margin_call"))) == [("so", "100042", CLEARED)]
    [cleared] = engine.on_account(_figures(state="ok"))
    assert (cleared.rule_id, cleared.status, cleared.message) == (
        "mc",
        CLEARED,
        "Account 100042 is back to ok (margin level 1000.00%).",
    )


def test_drawdown_raises_at_threshold_and_clears_below_the_band() -> None:
    engine = AlertEngine([AlertRule("dd", AlertKind.DRAWDOWN, 0.30, band=0.1)])
    [raised] = engine.on_account(_figures(drawdown=0.30))
    assert raised.message == "Account 100042's equity is 30.0% below its peak, at or above the 30.0% limit."
    assert engine.on_account(_figures(drawdown=0.28)) == []  # clear level is 27%
    assert _statuses(engine.on_account(_figures(drawdown=0.26))) == [("dd", "100042", CLEARED)]


def test_subjects_are_independent() -> None:
    engine = AlertEngine([STOP_OUT])
    engine.on_account(_figures(login=1, margin_level=10.0))
    assert _statuses(engine.on_account(_figures(login=2, margin_level=10.0))) == [("stop_out", "2", RAISED)]
    assert _statuses(engine.on_account(_figures(login=1, margin_level=90.0))) == [("stop_out", "1", CLEARED)]
    assert [a.subject for a in engine.active()] == ["2"]


def test_symbol_exposure_uses_absolute_notional_and_a_vanished_symbol_clears() -> None:
    engine = AlertEngine(
        [
            AlertRule("any", AlertKind.SYMBOL_EXPOSURE, 5e6),
            AlertRule("gold", AlertKind.SYMBOL_EXPOSURE, 1e6, Severity.CRITICAL, symbol="XAUUSD"),
        ]
    )
    alerts = engine.on_book(_book(("EURUSD", -6e6), ("XAUUSD", 2e6), ("US30", 1e5)), time_msc=100)
    assert _statuses(alerts) == [("any", "EURUSD", RAISED), ("gold", "XAUUSD", RAISED)]
    assert alerts[0].value == 6e6
    assert alerts[0].message == (
        "The book's net EURUSD exposure is $6,000,000 short, at or above the $5,000,000 limit.")
    assert engine.on_book(_book(("EURUSD", -4.8e6), ("XAUUSD", 2e6)), time_msc=101) == []  # in the band
    alerts = engine.on_book(_book(("EURUSD", 4.7e6)), time_msc=102)  # XAUUSD gone flat
    assert _statuses(alerts) == [("any", "EURUSD", CLEARED), ("gold", "XAUUSD", CLEARED)]
    assert alerts[1].value == 0.0
    assert engine.active() == []


def test_large_deal_is_a_single_event_per_deal() -> None:
    engine = AlertEngine(
        [
            AlertRule("big", AlertKind.LARGE_DEAL, 50.0, Severity.INFO),
            AlertRule("big_gold", AlertKind.LARGE_DEAL, 5.0, symbol="XAUUSD"),
        ]
    )
    assert engine.on_deal(_deal(49.99)) == []
    [alert] = engine.on_deal(_deal(50.0, ticket=9))
    assert (alert.rule_id, alert.subject, alert.value, alert.status) == ("big", "100042", 50.0, RAISED)
    assert alert.message == "Account 100042 bought 50 lots of EURUSD in deal 9, at or above the 50-lot limit."
    assert len(engine.on_deal(_deal(50.0, ticket=10))) == 1  # every large deal is news
    assert _statuses(engine.on_deal(_deal(6.0, "XAUUSD", DealKind.SELL))) == [("big_gold", "100042", RAISED)]
    money = Deal(11, 100042, DealKind.BALANCE, 5_000, amount=1e9)
    assert engine.on_deal(money) == []
    assert engine.active() == []


def test_a_value_jittering_around_the_threshold_raises_exactly_once() -> None:
    engine = AlertEngine([STOP_OUT])
    levels = [51.0, 49.9, 50.1, 49.5, 50.0, 51.9, 48.0, 52.4, 50.01, 49.99] * 20
    alerts = [a for level in levels for a in engine.on_account(_figures(margin_level=level))]
    assert _statuses(alerts) == [("stop_out", "100042", RAISED)]


def test_min_interval_holds_a_raised_alert() -> None:
    engine = AlertEngine([AlertRule("so", AlertKind.ACCOUNT_STATE, 2, band=0.0, min_interval_s=60)])
    raised = engine.on_account(_figures(state="stop_out", time_msc=1_000))
    flaps = [("ok", 2_000), ("stop_out", 3_000), ("ok", 60_999)]
    assert [a for state, t in flaps for a in engine.on_account(_figures(state=state, time_msc=t))] == []
    cleared = engine.on_account(_figures(state="ok", time_msc=61_000))
    assert _statuses(raised + cleared) == [("so", "100042", RAISED), ("so", "100042", CLEARED)]


def test_nan_and_unknown_states_are_ignored_and_counted() -> None:
    engine = AlertEngine(
        [STOP_OUT, AlertRule("dd", AlertKind.DRAWDOWN, 0.3), AlertRule("mc", AlertKind.ACCOUNT_STATE, 1)]
    )
    assert engine.on_account(_figures(margin_level=math.nan, drawdown=math.nan, state="bogus")) == []
    assert engine.ignored == 3
    engine.on_account(_figures(margin_level=10.0))
    assert engine.on_account(_figures(margin_level=math.nan)) == []  # a NaN does not clear either
    assert len(engine.active()) == 1
    any_symbol = AlertEngine(
        [AlertRule("x", AlertKind.SYMBOL_EXPOSURE, 1.0), AlertRule("d", AlertKind.LARGE_DEAL, 1.0)]
    )
    assert any_symbol.on_book(_book(("EURUSD", math.nan)), time_msc=1) == []
    assert any_symbol.on_deal(_deal(math.nan)) == []
    assert any_symbol.ignored == 2


def test_figures_with_missing_quotes_are_not_judged() -> None:
    engine = AlertEngine([STOP_OUT])
    assert engine.on_account(_figures(margin_level=1.0, missing_quotes=("USDJPY",))) == []
    assert engine.ignored == 0


def test_export_restore_round_trip_does_not_raise_again() -> None:
    rules = [*default_rules(100.0, 50.0)]
    engine = AlertEngine(rules)
    engine.on_account(_figures(margin_level=40.0, drawdown=0.5, time_msc=7))
    engine.on_book(_book(("EURUSD", 9e6)), time_msc=8)
    exported = json.loads(json.dumps(engine.export()))
    assert {(e["rule_id"], e["kind"], e["status"]) for e in exported} == {
        ("margin_call", "margin_level", "raised"),
        ("stop_out", "margin_level", "raised"),
        ("drawdown_30", "drawdown", "raised"),
        ("symbol_exposure_5m", "symbol_exposure", "raised"),
    }
    restarted = AlertEngine(rules)
    restarted.restore(exported)
    assert restarted.active() == engine.active()
    assert restarted.on_account(_figures(margin_level=40.0, drawdown=0.5)) == []
    assert restarted.on_book(_book(("EURUSD", 9e6)), time_msc=9) == []
    assert _statuses(restarted.on_book(_book(), time_msc=10)) == [("symbol_exposure_5m", "EURUSD", CLEARED)]


def test_restore_drops_alerts_of_removed_rules_and_rejects_malformed_entries() -> None:
    engine = AlertEngine([STOP_OUT])
    engine.on_account(_figures(margin_level=10.0))
    exported = engine.export()
    AlertEngine([STOP_OUT]).restore(exported)
    other = AlertEngine([AlertRule("dd", AlertKind.DRAWDOWN, 0.3)])
    other.restore(exported)
    assert other.active() == []
    with pytest.raises(ValueError, match=r"^time_msc: missing"):
        other.restore([{k: v for k, v in exported[0].items() if k != "time_msc"}])
    with pytest.raises(ValueError, match=r"^kind: "):
        other.restore([exported[0] | {"kind": "weather"}])
    with pytest.raises(ValueError, match=r"^threshold: "):
        other.restore([exported[0] | {"threshold": "high"}])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "weather"}, "kind"),
        ({"severity": "panic"}, "severity"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": 0.0}, "threshold"),
        ({"band": 1.0}, "band"),
        ({"min_interval_s": -1.0}, "min_interval_s"),
        ({"symbol": "EURUSD"}, "symbol"),
        ({"id": ""}, "id"),
        ({"kind": AlertKind.DRAWDOWN, "threshold": 30.0}, "threshold"),
        ({"kind": AlertKind.ACCOUNT_STATE, "threshold": 1.5}, "threshold"),
        ({"kind": AlertKind.LARGE_DEAL, "min_interval_s": 5.0}, "min_interval_s"),
    ],
)
def test_invalid_rules_fail_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        replace(STOP_OUT, **changes)  # type: ignore[arg-type]


def test_rule_strings_are_coerced_and_duplicate_ids_rejected() -> None:
    rule = AlertRule("x", "drawdown", 0.3, "critical")  # type: ignore[arg-type]
    assert (rule.kind, rule.severity) == (AlertKind.DRAWDOWN, Severity.CRITICAL)
    with pytest.raises(ValueError, match=r"^id: duplicate"):
        AlertEngine([rule, rule])


def test_default_rules() -> None:
    rules = {r.id: r for r in default_rules(margin_call=100.0, stop_out=50.0)}
    assert {i: (r.kind, r.threshold, r.severity) for i, r in rules.items()} == {
        "margin_call": (AlertKind.MARGIN_LEVEL, 100.0, Severity.WARNING),
        "stop_out": (AlertKind.MARGIN_LEVEL, 50.0, Severity.CRITICAL),
        "drawdown_30": (AlertKind.DRAWDOWN, 0.30, Severity.WARNING),
        "symbol_exposure_5m": (AlertKind.SYMBOL_EXPOSURE, 5e6, Severity.WARNING),
        "large_deal_50": (AlertKind.LARGE_DEAL, 50.0, Severity.INFO),
    }
    assert [a.rule_id for a in AlertEngine(rules.values()).on_account(_figures(margin_level=45.0))] == [
        "margin_call",
        "stop_out",
    ]


_values = st.one_of(st.floats(min_value=0.0, max_value=200.0), st.just(math.nan), st.none())


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 3), _values, _values, st.sampled_from(["ok", "margin_call", "stop_out"]))
    ),
    band=st.sampled_from([0.0, 0.05, 0.2]),
    hold_s=st.sampled_from([0.0, 0.002]),
)
def test_raises_and_clears_strictly_alternate(
    steps: list[tuple[int, float | None, float | None, str]], band: float, hold_s: float
) -> None:
    rules = [
        AlertRule("ml", AlertKind.MARGIN_LEVEL, 50.0, band=band, min_interval_s=hold_s),
        AlertRule("dd", AlertKind.DRAWDOWN, 0.5, band=band, min_interval_s=hold_s),
        AlertRule("st", AlertKind.ACCOUNT_STATE, 1, band=band, min_interval_s=hold_s),
        AlertRule("ex", AlertKind.SYMBOL_EXPOSURE, 100.0, band=band, min_interval_s=hold_s),
    ]
    by_id = {r.id: r for r in rules}
    engine = AlertEngine(rules)
    last: dict[tuple[str, str], AlertStatus] = {}
    for time_msc, (login, level, other, state) in enumerate(steps):
        drawdown = math.nan if other is None else other / 200.0
        alerts = engine.on_account(
            _figures(login, time_msc, margin_level=level, drawdown=drawdown, state=state)
        )
        exposure = () if other is None else ((f"S{login}", -other),)
        alerts += engine.on_book(_book(*exposure), time_msc)
        for alert in alerts:
            key = (alert.rule_id, alert.subject)
            assert last.get(key, CLEARED) is not alert.status
            last[key] = alert.status
            rule = by_id[alert.rule_id]
            if rule.kind is AlertKind.ACCOUNT_STATE:
                continue  # its value is the margin level the desk reads, not the state's rank
            value = math.inf if alert.value is None else alert.value
            if alert.status is RAISED:  # raised only on a breach, cleared only past the band
                assert value <= rule.threshold if rule.fires_below else value >= rule.threshold
            else:
                assert value > rule.clear_level if rule.fires_below else value < rule.clear_level
    raised = {key for key, status in last.items() if status is RAISED}
    assert {(a.rule_id, a.subject) for a in engine.active()} == raised


def test_floating_loss_is_judged_in_usd_with_hysteresis() -> None:
    """Issue 15: `floating_loss` rules were stored and shown enabled but never evaluated. The
    threshold is USD so one rule means the same for a JPY and a USD account."""
    rule = AlertRule("loss", AlertKind.FLOATING_LOSS, 10_000.0, Severity.WARNING, band=0.1)
    engine = AlertEngine([rule])
    jpy = {"currency": "JPY", "usd_rate": 0.0065}
    assert engine.on_account(_figures(profit=-1_500_000.0, **jpy)) == []  # ¥1.5M = $9,750
    (raised,) = engine.on_account(_figures(profit=-1_600_000.0, time_msc=2, **jpy))  # $10,400
    assert (raised.status, raised.value) == (RAISED, pytest.approx(10_400.0))
    assert engine.on_account(_figures(profit=-1_450_000.0, time_msc=3, **jpy)) == []  # inside the band
    (cleared,) = engine.on_account(_figures(profit=-1_300_000.0, time_msc=4, **jpy))  # $8,450 < $9,000
    assert cleared.status is CLEARED
    assert engine.on_account(_figures(profit=50_000.0, time_msc=5)) == []  # a profit is no loss


def test_messages_are_sentences_with_the_value_that_matters() -> None:
    """Issue 15: a margin-call alert said "1.00" (the state's rank) and ended in "(margin_call)"."""
    engine = AlertEngine([AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING),
                          AlertRule("stop_out", AlertKind.ACCOUNT_STATE, 2, Severity.CRITICAL)])
    call, out = engine.on_account(_figures(state="stop_out", margin_level=57.0))
    assert (call.value, out.value) == (57.0, 57.0)
    assert call.message == "Account 100042 reached margin call at a margin level of 57.00%."
    assert out.message == "Account 100042 reached stop out at a margin level of 57.00%."
    for alert in (call, out):
        assert "(" not in alert.message
        assert "_" not in alert.message


def test_a_flapping_account_raises_one_alert_with_a_count_and_the_latest_value() -> None:
    """Issue 15: one account entered margin call 24 times in 5 minutes: 24 alerts. Within the
    cool-down each raise is folded into the first (same first time, a count, the latest value)."""
    engine = AlertEngine([AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING)],
                         cooldown_s=300.0)
    t0 = 1_790_000_000_000
    raises = []
    for i in range(24):
        at = t0 + i * 12_000  # in and out every 12 s, for almost 5 minutes
        raises += engine.on_account(_figures(time_msc=at, state="margin_call", margin_level=90.0 - i))
        assert _statuses(engine.on_account(_figures(time_msc=at + 6_000, state="ok"))) == [
            ("margin_call", "100042", CLEARED)]
    assert [a.repeats for a in raises] == list(range(1, 25))
    assert {a.first for a in raises} == {t0}  # one alert: delivery and the store know it by this
    assert raises[-1].value == 67.0
    assert raises[-1].message == ("Account 100042 reached margin call at a margin level of 67.00%. "
                                  "Raised 24 times since 14:13:20 UTC.")
    after = t0 + 300_000  # the cool-down is over: a new alert
    (fresh,) = engine.on_account(_figures(time_msc=after, state="margin_call", margin_level=80.0))
    assert (fresh.repeats, fresh.first) == (1, after)
    with pytest.raises(ValueError, match="cooldown_s"):
        AlertEngine([], cooldown_s=-1.0)
