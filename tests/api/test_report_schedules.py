"""`/api/v1/report-schedules`: schedules made, listed, changed, paused and deleted through the API,
each bad field a 422 naming it, another tenant's schedule 404 and left as it was."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.tenancy import Role

from .conftest import World

GOOD: dict[str, Any] = {"type": "management", "format": "pdf", "frequency": "daily", "local_time": "07:30",
                        "time_zone": "Europe/London", "recipients": ["desk@a.test"]}


def test_schedules_are_made_changed_and_deleted(api: TestClient, world: World) -> None:
    manager, viewer = world.headers(world.a, Role.RISK_MANAGER), world.headers(world.a, Role.VIEWER)
    made = api.post("/api/v1/report-schedules", json=GOOD, headers=manager)
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert {k: schedule[k] for k in GOOD} == GOOD
    assert schedule["enabled"] is True
    stress = api.post("/api/v1/report-schedules", headers=manager, json={
        **GOOD, "type": "stress", "format": "xlsx", "frequency": "weekly", "weekday": 0})
    assert stress.status_code == 201, stress.text
    listed = api.get("/api/v1/report-schedules", headers=viewer).json()
    assert [(s["type"], s["frequency"], s["weekday"]) for s in listed] == [
        ("management", "daily", None), ("stress", "weekly", 0)]
    moved = api.patch(f"/api/v1/report-schedules/{schedule['id']}", headers=manager,
                      json={"local_time": "06:00", "enabled": False})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["local_time"], moved.json()["enabled"], moved.json()["type"]) == ("06:00", False,
                                                                                          "management")
    weekly = api.patch(f"/api/v1/report-schedules/{schedule['id']}", headers=manager,
                       json={"frequency": "weekly", "weekday": 4})
    assert (weekly.json()["frequency"], weekly.json()["weekday"]) == ("weekly", 4)
    daily = api.patch(f"/api/v1/report-schedules/{schedule['id']}", headers=manager,
                      json={"frequency": "daily", "weekday": None})
    assert (daily.json()["frequency"], daily.json()["weekday"]) == ("daily", None)
    assert api.patch(f"/api/v1/report-schedules/{schedule['id']}", headers=viewer,
                     json={"enabled": True}).status_code == 403
    assert api.delete(f"/api/v1/report-schedules/{schedule['id']}", headers=manager).status_code == 204
    left = api.get("/api/v1/report-schedules", headers=viewer).json()
    assert [s["id"] for s in left] == [stress.json()["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"type": "account_statement"}, "type"), ({"type": "weather"}, "type"), ({"format": "doc"}, "format"),
     ({"local_time": "25:00"}, "local_time"), ({"time_zone": "Mars/Olympus"}, "time_zone"),
     ({"recipients": []}, "recipients"), ({"recipients": ["not-an-address"]}, "recipients"),
     ({"frequency": "weekly"}, "weekday"), ({"weekday": 3}, "weekday")],
)
def test_bad_fields_are_named_and_nothing_is_stored(
    api: TestClient, world: World, change: dict[str, Any], field: str
) -> None:
    manager = world.headers(world.a, Role.RISK_MANAGER)
    before = api.get("/api/v1/report-schedules", headers=manager).json()
    response = api.post("/api/v1/report-schedules", json={**GOOD, **change}, headers=manager)
    assert response.status_code == 422, response.text
    loc = response.json()["detail"][0]["loc"]
    assert loc[0] == "body"
    assert loc[1].startswith(field)  # recipients[0] names the address
    assert api.get("/api/v1/report-schedules", headers=manager).json() == before


def test_a_bad_change_is_named_and_changes_nothing(api: TestClient, world: World) -> None:
    manager = world.headers(world.a, Role.RISK_MANAGER)
    schedule = api.post("/api/v1/report-schedules", json=GOOD, headers=manager).json()
    for body, field in (({"local_time": "7h"}, "local_time"), ({"enabled": "yes"}, "enabled")):
        response = api.patch(f"/api/v1/report-schedules/{schedule['id']}", json=body, headers=manager)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    stored = api.get("/api/v1/report-schedules", headers=manager).json()
    after = next(s for s in stored if s["id"] == schedule["id"])
    assert after == schedule


def test_another_tenants_schedule_is_not_found(api: TestClient, world: World) -> None:
    schedule = api.post("/api/v1/report-schedules", json=GOOD,
                        headers=world.headers(world.a, Role.RISK_MANAGER))
    other = world.headers(world.b)
    sid = schedule.json()["id"]
    paused = api.patch(f"/api/v1/report-schedules/{sid}", json={"enabled": False}, headers=other)
    assert paused.status_code == 404
    assert api.delete(f"/api/v1/report-schedules/{sid}", headers=other).status_code == 404
    assert all(s["id"] != sid for s in api.get("/api/v1/report-schedules", headers=other).json())
