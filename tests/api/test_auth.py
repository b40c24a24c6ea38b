"""Sign-in, rate limits on sign-in, and bearer-token checks on /api/v1/me."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from models.tenancy import Role
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import Identity, issue_token

from .conftest import DEMO_EMAIL, DEMO_PASSWORD, OTHER_EMAIL, settings_for


def _token(client: TestClient, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> str:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _me(client: TestClient, token: str) -> tuple[int, dict[str, object]]:
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


def test_token_happy_path(client: TestClient, settings: Settings) -> None:
    credentials = {"email": " Demo@Veles.local ", "password": DEMO_PASSWORD}
    response = client.post("/api/v1/auth/token", json=credentials)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    status, me = _me(client, body["access_token"])
    assert status == 200
    assert me["email"] == DEMO_EMAIL
    assert me["role"] == Role.RISK_MANAGER.value


def test_wrong_password_is_401_with_a_clear_message(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", json={"email": DEMO_EMAIL, "password": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Wrong email or password."
    unknown = client.post("/api/v1/auth/token", json={"email": "who@nowhere.test", "password": "nope"})
    assert unknown.status_code == 401
    assert unknown.json() == response.json()  # no way to tell which accounts exist


def test_invalid_input_names_the_field(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", json={"email": DEMO_EMAIL})
    assert response.status_code == 422
    assert ["body", "password"] in [error["loc"] for error in response.json()["detail"]]


def test_eleventh_attempt_in_a_minute_is_429_with_retry_after(client: TestClient, redis_url: str) -> None:
    for _ in range(10):
        response = client.post("/api/v1/auth/token", json={"email": OTHER_EMAIL, "password": "guess"})
        assert response.status_code == 401
    response = client.post("/api/v1/auth/token", json={"email": OTHER_EMAIL, "password": "guess"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts" in response.json()["detail"]


def test_the_limit_is_per_email_across_ips(settings: Settings) -> None:
    """Ten tries from one IP, the eleventh from another: the e-mail's counter still refuses."""
    app = create_api(settings)
    demo, other = {"email": DEMO_EMAIL, "password": "x"}, {"email": OTHER_EMAIL, "password": "x"}
    with TestClient(app, client=("10.0.0.1", 5000)) as first:
        for _ in range(10):
            assert first.post("/api/v1/auth/token", json=demo).status_code == 401
    with TestClient(app, client=("10.0.0.2", 5000)) as second:
        assert second.post("/api/v1/auth/token", json=demo).status_code == 429
        # the new IP is not blocked for other accounts
        assert second.post("/api/v1/auth/token", json=other).status_code == 401


def test_the_limit_is_per_ip_across_emails(client: TestClient) -> None:
    for n in range(10):
        response = client.post("/api/v1/auth/token", json={"email": f"user{n}@spray.test", "password": "x"})
        assert response.status_code == 401
    response = client.post("/api/v1/auth/token", json={"email": "user10@spray.test", "password": "x"})
    assert response.status_code == 429


def test_without_redis_the_in_process_limiter_applies(settings: Settings) -> None:
    with TestClient(create_api(settings_for(settings.database_url, None))) as client:
        codes = [
            client.post("/api/v1/auth/token", json={"email": OTHER_EMAIL, "password": "x"}).status_code
            for _ in range(11)
        ]
    assert codes == [401] * 10 + [429]


def test_me_requires_a_token(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_me_refuses_an_expired_token(client: TestClient, settings: Settings) -> None:
    identity = Identity(user_id=1, tenant_id=1, role=Role.RISK_MANAGER, email=DEMO_EMAIL)
    expired = issue_token(identity, settings.secret_key.get_secret_value(), minutes=-1)
    status, body = _me(client, expired)
    assert status == 401
    assert "expired" in str(body["detail"])


def test_me_refuses_a_tampered_token(client: TestClient) -> None:
    header, payload, signature = _token(client).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tenant_id"] += 1  # try to read another broker
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    status, body = _me(client, f"{header}.{forged}.{signature}")
    assert status == 401
    assert body["detail"] == "Invalid session token."


def test_me_refuses_alg_none_and_foreign_keys(client: TestClient) -> None:
    claims = {"sub": "1", "tenant_id": 1, "role": "risk_manager", "email": DEMO_EMAIL,
              "exp": datetime.now(UTC) + timedelta(minutes=5)}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert _me(client, unsigned)[0] == 401
    foreign = jwt.encode(claims, "some-other-secret-of-sufficient-length-0123", algorithm="HS256")
    assert _me(client, foreign)[0] == 401
    assert _me(client, "not-a-jwt")[0] == 401


def test_me_with_a_valid_token(client: TestClient) -> None:
    status, me = _me(client, _token(client, OTHER_EMAIL, "other-broker-pass"))
    assert status == 200
    assert me["email"] == OTHER_EMAIL
    assert me["role"] == Role.VIEWER.value
