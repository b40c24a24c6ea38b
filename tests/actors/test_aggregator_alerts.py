"""The aggregator's core raises alerts from account figures and deals, once per crossing."""

from __future__ import annotations

import dataclasses

from actors.risk_aggregator import BookPublisher
from tests.actors.support import account_figures as _figures
from veles.risk.events import Deal, DealKind


async def test_stop_out_alerts_once_and_clears_on_recovery() -> None:
    publisher = BookPublisher(tenant_id=1)
    healthy = dataclasses.replace(_figures(), state="ok", margin_level=400.0)
    stopped = dataclasses.replace(healthy, state="stop_out", margin_level=40.0)
    assert publisher.apply([healthy], sent_at=1.0) == []
    raised = publisher.apply([stopped], sent_at=2.0)
    assert {(a.rule_id, a.status.value, a.severity.value) for a in raised} == {
        ("margin_call", "raised", "warning"), ("stop_out", "raised", "critical")
    }
    assert publisher.apply([stopped], sent_at=3.0) == []  # still stopped out: no second alert
    await publisher.announce(raised)
    assert sorted(a["rule_id"] for a in publisher.recent_alerts) == ["margin_call", "stop_out"]
    cleared = publisher.apply([healthy], sent_at=4.0)
    assert {(a.rule_id, a.status.value) for a in cleared} == {
        ("margin_call", "cleared"), ("stop_out", "cleared")
    }
    assert publisher.alerts.active() == []


def test_a_large_deal_raises_an_alert_naming_the_account() -> None:
    publisher = BookPublisher(tenant_id=1)
    figures = _figures()
    deal = Deal(ticket=1, login=figures.login, kind=DealKind.BUY, time_msc=1, symbol="XAUUSD",
                volume=75.0, price=2000.0, position_id=1)
    alerts = publisher.apply([figures], sent_at=1.0, deals=[deal])
    assert [a.rule_id for a in alerts] == ["large_deal_50"]
    assert alerts[0].message.startswith(f"Account {figures.login} bought 75 lots of XAUUSD")
