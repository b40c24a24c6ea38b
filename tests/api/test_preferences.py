"""`GET/PUT /api/v1/me/notifications` on the real PostgreSQL: each user's own alert-delivery
preferences, every refused field a 422 naming it with nothing stored, and SMS only to a phone
proven by an SMS code (sent through the official Twilio client to the local stub)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models.db import session_scope
from models.notifications import DeliveryPreference
from models.tenancy import Role, TwoFactor
from tests.auth_support import PASSWORD, Made, auth_db, auth_settings, make_user
from tests.stubs.twilio_stub import TwilioStub
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import Identity, issue_token

__all__ = ["auth_db"]
PHONE = "+4915112345678"
URL = "/api/v1/me/notifications"
CHOICE: dict[str, Any] = {
    "channels": {"info": ["portal"], "warning": ["portal", "email"], "critical": ["portal", "email"]},
    "time_zone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00",
    "critical_overrides_quiet": False, "digest_minutes": 15,
}


@pytest.fixture
def settings(auth_db: str, redis_url: str, twilio_stub: TwilioStub) -> Settings:
    return auth_settings(auth_db, redis_url, **twilio_stub.settings_fields())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings)) as test_client:
        yield test_client


def headers(settings: Settings, made: Made) -> dict[str, str]:
    identity = Identity(user_id=made.user_id, tenant_id=made.tenant_id, role=Role.VIEWER, email=made.email)
    return {"Authorization": f"Bearer {issue_token(identity, settings.secret_key.get_secret_value(), 5)}"}


def rows(settings: Settings, made: Made) -> int:
    with session_scope(settings.database_url) as db:
        statement = select(func.count()).where(DeliveryPreference.user_id == made.user_id)
        return int(db.exec(statement).one())


def test_anonymous_is_401(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
    assert client.put(URL, json=CHOICE).status_code == 401


def test_the_defaults_until_saved_then_the_choice(client: TestClient, settings: Settings) -> None:
    user = make_user(settings.database_url)
    auth = headers(settings, user)
    defaults = client.get(URL, headers=auth)
    assert defaults.status_code == 200
    assert defaults.json() == {
        "channels": {"info": ["portal"], "warning": ["portal"], "critical": ["portal", "email"]},
        "time_zone": "UTC", "quiet_start": None, "quiet_end": None, "critical_overrides_quiet": True,
        "digest_minutes": 5, "sms_phone": None,
    }
    saved = client.put(URL, json=CHOICE, headers=auth)
    assert saved.status_code == 200, saved.text
    assert saved.json() == CHOICE | {"sms_phone": None}
    assert client.get(URL, headers=auth).json() == saved.json()
    again = client.put(URL, json=CHOICE | {"digest_minutes": 30}, headers=auth)
    assert again.json()["digest_minutes"] == 30
    assert rows(settings, user) == 1  # updated in place, one row per user


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"time_zone": "Mars/Olympus"}, ["body", "time_zone"], "unknown time zone"),
        ({"quiet_end": None}, ["body", "quiet_end"], "need both a start and an end"),
        ({"quiet_end": "22:00"}, ["body", "quiet_end"], "must differ from quiet_start"),
        ({"quiet_start": "25:00"}, ["body", "quiet_start"], "valid time"),
        ({"channels": {"critical": ["pager"]}}, ["body", "channels", "critical", 0], "'email' or 'sms'"),
        ({"channels": {"fatal": ["email"]}}, ["body", "channels", "fatal", "[key]"], "'info', 'warning'"),
        ({"digest_minutes": 0}, ["body", "digest_minutes"], "greater than or equal to 1"),
        ({"digest_minutes": 1441}, ["body", "digest_minutes"], "less than or equal to 1440"),
        ({"sound": "loud"}, ["body", "sound"], "Extra inputs"),
        ({"channels": {"critical": ["portal", "sms"]}}, ["body", "channels", "critical"], "verified phone"),
    ],
)
def test_a_refused_field_is_named_and_nothing_changes(
    client: TestClient, settings: Settings, change: dict[str, Any], loc: list[Any], words: str
) -> None:
    user = make_user(settings.database_url, phone=PHONE)  # a phone, not verified: no SMS yet
    auth = headers(settings, user)
    assert client.put(URL, json=CHOICE, headers=auth).status_code == 200
    refused = client.put(URL, json=CHOICE | change, headers=auth)
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == loc
    assert words in error["msg"]
    assert client.get(URL, headers=auth).json() == CHOICE | {"sms_phone": None}


def test_sms_after_the_phone_is_proven_by_a_code_and_not_after_it_changes(
    client: TestClient, settings: Settings, twilio_stub: TwilioStub
) -> None:
    user = make_user(settings.database_url, phone=PHONE, two_factor=TwoFactor.SMS)
    sms = CHOICE | {"channels": {"critical": ["portal", "sms"]}}
    assert client.put(URL, json=sms, headers=headers(settings, user)).status_code == 422

    credentials = {"email": user.email, "password": user.password}
    challenge = client.post("/api/v1/auth/token", json=credentials).json()["challenge"]
    match = re.search(r"\b(\d{6})\b", twilio_stub.messages[-1].body)
    assert match is not None
    pair = client.post("/api/v1/auth/verify", json={"challenge": challenge, "code": match.group(1)})
    assert pair.status_code == 200
    auth = {"Authorization": f"Bearer {pair.json()['access_token']}"}
    saved = client.put(URL, json=sms, headers=auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["sms_phone"] == PHONE
    assert saved.json()["channels"]["critical"] == ["portal", "sms"]

    moved = client.put("/api/v1/me/phone", json={"phone": "+4915199999999", "current_password": PASSWORD},
                       headers=auth)
    assert moved.status_code == 200
    assert moved.json()["phone_verified"] is False
    assert client.get(URL, headers=auth).json()["sms_phone"] is None
    assert client.put(URL, json=sms, headers=auth).status_code == 422


def test_each_user_sees_only_their_own(client: TestClient, settings: Settings) -> None:
    mine = make_user(settings.database_url)
    colleague = make_user(settings.database_url, tenant_id=mine.tenant_id)
    assert client.put(URL, json=CHOICE, headers=headers(settings, mine)).status_code == 200
    assert client.get(URL, headers=headers(settings, colleague)).json()["time_zone"] == "UTC"
    assert rows(settings, colleague) == 0
