"""`/api/v1/alerts` and `/api/v1/alert-rules` on the real PostgreSQL: filters, acknowledge and
resolve recording who and when, rules CRUD, bad input, and 401/403/404 for every route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from json import loads

import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import select

from models.alerts import Alert, AlertKind, AlertRule, AlertState, Severity
from models.db import session_scope
from models.tenancy import Role
from veles.config import redis_name
from veles.services.alert_watch import alert_state_topic

from .conftest import World

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def alerts(world: World) -> Iterator[dict[str, int]]:
    """Three alerts of tenant A (critical 2 h ago, warning 1 h ago, info now) and one of B, as the
    engine writes them, and no others; removed afterwards with every rule."""
    ids: dict[str, int] = {}
    with session_scope(world.settings.database_url) as session:
        for stale in session.exec(select(Alert)).all():  # e.g. raised by the engine of test_accounts.py
            session.delete(stale)
        session.flush()
        for name, tenant, severity, age in (
            ("critical", world.a, Severity.CRITICAL, 2),
            ("warning", world.a, Severity.WARNING, 1),
            ("info", world.a, Severity.INFO, 0),
            ("b", world.b, Severity.CRITICAL, 0),
        ):
            row = Alert(
                tenant_id=tenant,
                severity=severity,
                subject="100001",
                value=42.0,
                message=f"{name} alert",
                created_at=T0 - timedelta(hours=age),
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            ids[name] = row.id
    yield ids
    with session_scope(world.settings.database_url) as session:
        for alert in session.exec(select(Alert)).all():
            session.delete(alert)
        for rule in session.exec(select(AlertRule)).all():
            session.delete(rule)


def _get(api: TestClient, world: World, path: str, **params: str) -> list[dict[str, object]]:
    response = api.get(path, headers=world.headers(world.a, Role.VIEWER), params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


def test_list_filters_newest_first_and_own_tenant_only(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    every = _get(api, world, "/api/v1/alerts")
    assert [a["id"] for a in every] == [alerts["info"], alerts["warning"], alerts["critical"]]
    assert [a["id"] for a in _get(api, world, "/api/v1/alerts", severity="critical")] == [alerts["critical"]]
    since = (T0 - timedelta(minutes=90)).isoformat()
    assert [a["id"] for a in _get(api, world, "/api/v1/alerts", since=since)] == [
        alerts["info"],
        alerts["warning"],
    ]
    assert [a["id"] for a in _get(api, world, "/api/v1/alerts", limit="1", offset="1")] == [alerts["warning"]]
    assert _get(api, world, "/api/v1/alerts", state="resolved") == []
    b = api.get("/api/v1/alerts", headers=world.headers(world.b)).json()
    assert [a["id"] for a in b] == [alerts["b"]]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("state", "closed"),
        ("severity", "loud"),
        ("since", "yesterday"),
        ("limit", "0"),
        ("limit", "501"),
        ("offset", "-1"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    api: TestClient, world: World, param: str, value: str
) -> None:
    response = api.get("/api/v1/alerts", headers=world.headers(world.a), params={param: value})
    assert response.status_code == 422
    assert param in [error["loc"][-1] for error in response.json()["detail"]]


def test_acknowledge_then_resolve_records_who_and_when(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    manager = world.users[world.a, Role.RISK_MANAGER]
    headers = world.headers(world.a, Role.RISK_MANAGER)
    acked = api.post(f"/api/v1/alerts/{alerts['critical']}/acknowledge", headers=headers)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", manager)
    assert body["acknowledged_at"] is not None
    # acknowledging again (even by someone else) keeps the first person
    again = api.post(f"/api/v1/alerts/{alerts['critical']}/acknowledge", headers=world.headers(world.a))
    assert again.json() == body
    done = api.post(f"/api/v1/alerts/{alerts['critical']}/resolve", headers=world.headers(world.a)).json()
    assert (done["state"], done["acknowledged_by"]) == ("resolved", manager)
    assert done["resolved_at"] is not None
    late = api.post(f"/api/v1/alerts/{alerts['critical']}/acknowledge", headers=headers)
    assert late.status_code == 409
    # resolving one nobody acknowledged names the resolver
    direct = api.post(f"/api/v1/alerts/{alerts['info']}/resolve", headers=headers).json()
    assert (direct["state"], direct["acknowledged_by"]) == ("resolved", manager)
    with session_scope(world.settings.database_url) as session:
        row = session.get(Alert, alerts["critical"])
        assert row is not None
        assert (row.state, row.acknowledged_by) == (AlertState.RESOLVED, manager)


def test_rules_crud(api: TestClient, world: World, alerts: dict[str, int], ray_local: None) -> None:
    """Every change is stored and offered to the tenant's engine (not running here: `running`
    false; tests/api/test_accounts.py checks a running one takes them)."""
    headers = world.headers(world.a, Role.RISK_MANAGER)
    created = api.post(
        "/api/v1/alert-rules",
        headers=headers,
        json={"kind": "margin_level", "threshold": 80, "severity": "critical"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["engine"]["running"] is False
    rule = created.json()["rule"]
    assert (rule["kind"], rule["threshold"], rule["symbol"], rule["enabled"]) == (
        "margin_level",
        80.0,
        None,
        True,
    )
    changed = api.patch(
        f"/api/v1/alert-rules/{rule['id']}",
        headers=headers,
        json={"threshold": 60, "symbol": "EURUSD", "enabled": False},
    ).json()["rule"]
    assert (changed["threshold"], changed["symbol"], changed["enabled"]) == (60.0, "EURUSD", False)
    assert changed["severity"] == "critical"
    cleared = api.patch(f"/api/v1/alert-rules/{rule['id']}", headers=headers, json={"symbol": None}).json()[
        "rule"
    ]
    assert cleared["symbol"] is None
    assert api.get("/api/v1/alert-rules", headers=world.headers(world.a, Role.VIEWER)).json() == [cleared]
    with session_scope(world.settings.database_url) as session:  # an alert the rule raised
        session.add(
            Alert(
                tenant_id=world.a,
                rule_id=rule["id"],
                severity=Severity.CRITICAL,
                subject="1",
                value=1.0,
                message="m",
            )
        )
    removed = api.delete(f"/api/v1/alert-rules/{rule['id']}", headers=headers)
    assert removed.status_code == 200, removed.text
    assert removed.json()["rule"] is None
    assert api.get("/api/v1/alert-rules", headers=headers).json() == []
    assert sum(1 for a in _get(api, world, "/api/v1/alerts") if a["message"] == "m") == 1  # the alert stays


def test_an_older_unrunnable_rule_is_shown_not_evaluated_and_can_be_switched_off(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    headers = world.headers(world.a, Role.RISK_MANAGER)
    with session_scope(world.settings.database_url) as session:  # stored before the check existed
        session.add(AlertRule(tenant_id=world.a, kind=AlertKind.TOXIC_FLOW, threshold=1.0, label="EURUSD"))
    (old,) = api.get("/api/v1/alert-rules", headers=headers).json()
    assert old["evaluated"] is False
    assert "not evaluated" in old["status"]
    assert "unknown label 'EURUSD'" in old["status"]
    refused = api.patch(f"/api/v1/alert-rules/{old['id']}", headers=headers, json={"threshold": 2})
    assert refused.status_code == 422
    assert [e["loc"][-1] for e in refused.json()["detail"]] == ["label"]
    off = api.patch(f"/api/v1/alert-rules/{old['id']}", headers=headers, json={"enabled": False})
    assert off.status_code == 200, off.text
    assert off.json()["rule"]["enabled"] is False
    loss = api.post("/api/v1/alert-rules", headers=headers, json={"kind": "floating_loss", "threshold": 5e4})
    assert loss.status_code == 201, loss.text
    assert loss.json()["rule"]["evaluated"] is True


def test_a_toxic_flow_rule_names_its_label_in_its_own_field(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    """The label a toxic_flow rule watches is its `label` (it once rode in `symbol`); an unknown
    one is a 422 that names the field and the labels there are, and nothing is stored."""
    headers = world.headers(world.a, Role.RISK_MANAGER)
    created = api.post("/api/v1/alert-rules", headers=headers,
                       json={"kind": "toxic_flow", "threshold": 1, "label": "martingale_grid"})
    assert created.status_code == 201, created.text
    rule = created.json()["rule"]
    assert (rule["label"], rule["symbol"], rule["evaluated"]) == ("martingale_grid", None, True)
    refused = api.patch(f"/api/v1/alert-rules/{rule['id']}", headers=headers, json={"label": "martingale"})
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"][-1] == "label"
    assert error["msg"].endswith("unknown label 'martingale': expected one of scalper, latency_arbitrage, "
                                 "martingale_grid, news, hedged_pair, syndicate")
    news = api.patch(f"/api/v1/alert-rules/{rule['id']}", headers=headers, json={"label": "news"})
    assert news.json()["rule"]["label"] == "news"
    anything = api.patch(f"/api/v1/alert-rules/{rule['id']}", headers=headers, json={"label": None})
    assert anything.json()["rule"]["label"] is None
    assert [r["label"] for r in api.get("/api/v1/alert-rules", headers=headers).json()] == [None]
    with session_scope(world.settings.database_url) as session:
        stored = session.exec(select(AlertRule).where(AlertRule.tenant_id == world.a)).one()
        assert (stored.label, stored.symbol) == (None, None)


def test_the_built_in_rules_are_listed_with_what_they_watch(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    headers = world.headers(world.a, Role.VIEWER)
    before = {r["id"]: r for r in api.get("/api/v1/alert-rules/built-in", headers=headers).json()}
    assert set(before) == {"margin_call", "stop_out", "drawdown_30", "symbol_exposure_5m", "large_deal_50"}
    assert before["margin_call"]["status"] == "always on"
    assert "own MT5 group" in before["stop_out"]["watches"]
    assert before["stop_out"]["severity"] == "critical"
    assert all(r["running"] for r in before.values())
    with session_scope(world.settings.database_url) as session:
        session.add(AlertRule(tenant_id=world.a, kind=AlertKind.EXPOSURE, threshold=1e6, enabled=False))
    after = {r["id"]: r for r in api.get("/api/v1/alert-rules/built-in", headers=headers).json()}
    assert after["symbol_exposure_5m"]["running"] is False
    assert after["symbol_exposure_5m"]["status"] == "replaced by your exposure rules"
    assert after["margin_call"]["running"] is True
    other = api.get("/api/v1/alert-rules/built-in", headers=world.headers(world.b)).json()
    assert all(r["running"] for r in other)  # tenant A's rule changes nothing for B
    assert api.get("/api/v1/alert-rules/built-in").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "volume", "threshold": 1}, "kind"),
        ({"kind": "exposure"}, "threshold"),
        ({"kind": "exposure", "threshold": -1}, "threshold"),
        ({"kind": "exposure", "threshold": "NaN"}, "threshold"),
        ({"kind": "exposure", "threshold": 1, "symbol": "EUR USD"}, "symbol"),
        ({"kind": "exposure", "threshold": 1, "severity": "loud"}, "severity"),
        ({"kind": "exposure", "threshold": 1, "colour": "red"}, "colour"),
        # issue 15: what the engine would store and then skip is refused, naming the field
        ({"kind": "toxic_flow", "threshold": 101}, "threshold"),
        ({"kind": "toxic_flow", "threshold": 50, "symbol": "EURUSD"}, "symbol"),
        ({"kind": "toxic_flow", "threshold": 50, "label": "whale"}, "label"),
        ({"kind": "toxic_flow", "threshold": 50, "label": ""}, "label"),
        ({"kind": "margin_level", "threshold": 50, "label": "scalper"}, "label"),
        ({"kind": "exposure", "threshold": 0}, "threshold"),
        ({"kind": "equity_drop", "threshold": 250}, "threshold"),
        ({"kind": "margin_level", "threshold": 50, "symbol": "EURUSD"}, "symbol"),
        ({"kind": "floating_loss", "threshold": 1000, "symbol": "EURUSD"}, "symbol"),
    ],
)
def test_bad_rules_are_422_naming_the_field(
    api: TestClient, world: World, alerts: dict[str, int], body: dict[str, object], field: str
) -> None:
    response = api.post("/api/v1/alert-rules", headers=world.headers(world.a), json=body)
    assert response.status_code == 422
    assert field in [error["loc"][-1] for error in response.json()["detail"]]
    assert api.get("/api/v1/alert-rules", headers=world.headers(world.a)).json() == []


def test_anonymous_wrong_role_and_other_tenant(api: TestClient, world: World, alerts: dict[str, int]) -> None:
    with session_scope(world.settings.database_url) as session:
        rule = AlertRule(tenant_id=world.a, kind=AlertKind.EXPOSURE, threshold=1e6)
        session.add(rule)
        session.flush()
        rule_id = rule.id
    alert = alerts["warning"]
    rule_body = {"kind": "exposure", "threshold": 5}
    routes = [
        ("get", "/api/v1/alerts", None, None),
        ("get", f"/api/v1/alerts/{alert}", None, None),
        ("post", f"/api/v1/alerts/{alert}/acknowledge", None, Role.VIEWER),
        ("post", f"/api/v1/alerts/{alert}/resolve", None, Role.VIEWER),
        ("get", "/api/v1/alert-rules", None, None),
        ("post", "/api/v1/alert-rules", rule_body, Role.VIEWER),
        ("patch", f"/api/v1/alert-rules/{rule_id}", {"threshold": 2}, Role.VIEWER),
        ("delete", f"/api/v1/alert-rules/{rule_id}", None, Role.VIEWER),
    ]
    for method, path, json, weak_role in routes:
        assert api.request(method, path, json=json).status_code == 401, path
        if weak_role is not None:
            assert (
                api.request(method, path, json=json, headers=world.headers(world.a, weak_role)).status_code
                == 403
            )
        if "{" not in path and path.rsplit("/", 1)[-1] in ("alerts", "alert-rules"):
            continue  # collections: B sees its own (checked above), creates its own
        assert api.request(method, path, json=json, headers=world.headers(world.b)).status_code == 404, path
    assert api.get(f"/api/v1/alerts/{alert}", headers=world.headers(world.a)).json()["state"] == "open"
    assert [r["id"] for r in api.get("/api/v1/alert-rules", headers=world.headers(world.a)).json()] == [
        rule_id
    ]
    assert api.get("/api/v1/alert-rules", headers=world.headers(world.b)).json() == []


def test_a_client_that_saw_a_gap_reloads_the_alerts_changed_after_its_last_number(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    """Issue 15: events carry the tenant's `seq`; `after_seq` lists the alerts changed after a
    number, oldest event first, and `X-Alert-Seq` says how far the list reaches."""
    from actors.alert_store import take_seqs
    from models.db import tenant_session

    url = world.settings.database_url
    with tenant_session(url, world.a) as db:  # the engine numbers its events as it stores them
        first = take_seqs(db, world.a, 3)
        for offset, name in enumerate(("warning", "critical", "info")):
            row = db.get(Alert, alerts[name])
            assert row is not None
            row.seq = first + offset
            db.add(row)
    response = api.get("/api/v1/alerts", headers=world.headers(world.a, Role.VIEWER),
                       params={"after_seq": str(first)})
    assert response.status_code == 200, response.text
    assert [a["id"] for a in response.json()] == [alerts["critical"], alerts["info"]]
    assert [a["seq"] for a in response.json()] == [first + 1, first + 2]
    assert response.headers["X-Alert-Seq"] == str(first + 2)
    other = api.get("/api/v1/alerts", headers=world.headers(world.b))
    assert other.headers["X-Alert-Seq"] == "0"  # per tenant: B's engine numbered nothing
    bad = api.get("/api/v1/alerts", headers=world.headers(world.a), params={"after_seq": "-1"})
    assert bad.status_code == 422
    assert "after_seq" in bad.text


def test_the_unread_count_grows_with_raises_and_clears_on_acknowledge_and_mark_read(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    """Issue 15: per user, open alerts raised after the user's read mark."""
    import dataclasses

    from actors.alert_store import AlertStore, tenant_rules
    from tests.actors.support import account_figures
    from veles.risk.alerts import AlertEngine

    viewer, dealer = world.headers(world.a, Role.VIEWER), world.headers(world.a, Role.RISK_MANAGER)

    def unread(headers: dict[str, str]) -> int:
        response = api.get("/api/v1/me/alerts", headers=headers)
        assert response.status_code == 200, response.text
        count: int = response.json()["unread"]
        return count

    before = unread(viewer)
    engine, store = AlertEngine(tenant_rules()), AlertStore(world.settings.database_url, world.a)
    raised = engine.on_account(dataclasses.replace(account_figures(), login=100077, state="stop_out",
                                                   margin_level=40.0))
    ids = [row_id for row_id, _seq in store.record(raised)]  # margin call and stop out, as the engine does
    assert unread(viewer) == before + 2
    assert unread(dealer) == before + 2  # per user: nobody has read them yet
    assert api.post(f"/api/v1/alerts/{ids[0]}/acknowledge", headers=dealer).status_code == 200
    assert unread(viewer) == before + 1  # acknowledged by anyone: no longer unread for anyone
    marked = api.post("/api/v1/me/alerts/read", headers=viewer)
    assert marked.status_code == 200
    assert marked.json()["unread"] == 0
    assert unread(viewer) == 0
    assert unread(dealer) == before + 1  # the dealer's own mark has not moved

    assert api.get("/api/v1/me/alerts", headers=viewer).json()["desktop_notifications"] is False
    chosen = api.put("/api/v1/me/alerts", headers=viewer, json={"desktop_notifications": True})
    assert chosen.status_code == 200
    assert api.get("/api/v1/me/alerts", headers=viewer).json()["desktop_notifications"] is True
    assert api.get("/api/v1/me/alerts", headers=dealer).json()["desktop_notifications"] is False
    bad = api.put("/api/v1/me/alerts", headers=viewer, json={"desktop_notifications": "maybe"})
    assert bad.status_code == 422
    assert "desktop_notifications" in bad.text


def test_the_escalation_delay_is_set_by_rule_editors(api: TestClient, world: World) -> None:
    admin, viewer = world.headers(world.a), world.headers(world.a, Role.VIEWER)
    assert api.put("/api/v1/alert-escalation", headers=viewer, json={"after_minutes": 5}).status_code == 403
    saved = api.put("/api/v1/alert-escalation", headers=admin, json={"after_minutes": 5})
    assert saved.status_code == 200, saved.text
    assert api.get("/api/v1/alert-escalation", headers=viewer).json() == {"after_minutes": 5.0}
    other_tenant = api.get("/api/v1/alert-escalation", headers=world.headers(world.b))
    assert other_tenant.json() == {"after_minutes": None}
    bad = api.put("/api/v1/alert-escalation", headers=admin, json={"after_minutes": 0})
    assert bad.status_code == 422
    assert "after_minutes" in bad.text
    assert api.put("/api/v1/alert-escalation", headers=admin, json={"after_minutes": None}).status_code == 200


def test_acknowledge_and_resolve_are_published_to_the_tenants_pages(
    api: TestClient, world: World, alerts: dict[str, int]
) -> None:
    """Every web process's alerts pages and bells follow the tenant's alert state channel
    (`veles.services.alert_state`): the API publishes each change after its commit, prefixed."""
    assert world.settings.redis_url
    client = redis.Redis.from_url(world.settings.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_name(world.settings.redis_prefix, alert_state_topic(world.a)))
    try:
        headers = world.headers(world.a, Role.RISK_MANAGER)
        for action in ("acknowledge", "resolve"):
            done = api.post(f"/api/v1/alerts/{alerts['warning']}/{action}", headers=headers)
            assert done.status_code == 200, done.text
        got: list[dict[str, object]] = []
        deadline = time.monotonic() + 5.0
        while len(got) < 2 and time.monotonic() < deadline:
            raw = pubsub.get_message(timeout=0.5)  # None also for the subscription's own reply
            if raw is not None:
                got.append(loads(raw["data"]))
        assert [(m["kind"], m["id"], m["state"]) for m in got] == [
            ("state", alerts["warning"], "acknowledged"), ("state", alerts["warning"], "resolved")]
        assert got[1]["acknowledged_by"] == world.users[world.a, Role.RISK_MANAGER]
    finally:
        pubsub.close()
        client.close()
