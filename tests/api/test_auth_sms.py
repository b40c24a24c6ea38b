"""The SMS step over HTTP: /auth/token answers a challenge, /auth/verify exchanges it and the code
(texted through the official Twilio client to the local stub) for tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.tenancy import TwoFactor
from tests.auth_support import Made, auth_db, auth_settings, make_user
from tests.stubs.twilio_stub import TwilioStub
from veles.api import create_api
from veles.config import Settings

__all__ = ["auth_db"]
PHONE = "+4915112345678"


@pytest.fixture
def settings(auth_db: str, redis_url: str, twilio_stub: TwilioStub) -> Settings:
    return auth_settings(auth_db, redis_url, **twilio_stub.settings_fields())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings)) as test_client:
        yield test_client


@pytest.fixture
def sms_user(settings: Settings) -> Made:
    return make_user(settings.database_url, phone=PHONE, two_factor=TwoFactor.SMS)


def test_sign_in_with_an_sms_code(client: TestClient, sms_user: Made, twilio_stub: TwilioStub) -> None:
    first = client.post("/api/v1/auth/token", json={"email": sms_user.email, "password": sms_user.password})
    assert first.status_code == 200, first.text
    body = first.json()
    assert "access_token" not in body
    assert (body["phone_hint"], body["verify_url"]) == ("…78", "/api/v1/auth/verify")
    match = re.search(r"\b(\d{6})\b", twilio_stub.messages[-1].body)
    assert match is not None
    code = match.group(1)

    wrong = client.post("/api/v1/auth/verify", json={"challenge": body["challenge"],
                                                     "code": f"{(int(code) + 1) % 10**6:06d}"})
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "Wrong code; check the SMS and try again.")
    done = client.post("/api/v1/auth/verify", json={"challenge": body["challenge"], "code": code})
    assert done.status_code == 200, done.text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {done.json()['access_token']}"})
    assert me.json()["email"] == sms_user.email
    again = client.post("/api/v1/auth/verify", json={"challenge": body["challenge"], "code": code})
    assert again.status_code == 401


def test_when_twilio_refuses_sign_in_is_a_clear_503(client: TestClient, sms_user: Made,
                                                   twilio_stub: TwilioStub) -> None:
    twilio_stub.reject(PHONE, 30003, "Unreachable destination handset.")
    credentials = {"email": sms_user.email, "password": sms_user.password}
    response = client.post("/api/v1/auth/token", json=credentials)
    assert response.status_code == 503
    assert "could not be sent by SMS" in response.json()["detail"]
