"""A connection to a real MT5 server's Web API (`https://host:port`) is accepted, stored with its
manager login and encrypted password, and its live test authenticates to the server (here the
fake MT5 Web API over TLS with a private CA, trusted through the MT5_CA_BUNDLE setting) and reads
its accounts through the Web API gateway; plain http and malformed addresses are refused naming
the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.connections import Mt5Connection
from models.db import session_scope
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_feed_fake, self_signed_tls, serving
from veles.api.app import create_api

from .conftest import World


@pytest.fixture
def clean(world: World) -> Iterator[None]:
    yield
    with session_scope(world.settings.database_url) as session:
        for row in session.exec(select(Mt5Connection)).all():
            session.delete(row)


def test_an_https_web_api_server_is_added_and_its_test_reads_the_server(
        world: World, clean: None, redis_url: str, tmp_path: Path) -> None:
    ca, cert, key = self_signed_tls(tmp_path)
    fake, broker, _ = make_feed_fake(accounts=4)
    settings = world.settings.model_copy(update={"mt5_ca_bundle": str(ca)})
    with serving(fake, tls=(cert, key)) as url, TestClient(create_api(settings)) as api:
        headers = world.headers(world.a)
        created = api.post("/api/v1/connections", headers=headers,
                           json={"server": url + "/", "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD})
        assert created.status_code == 201, created.text
        assert created.json()["server"] == url  # stored without the trailing slash
        with session_scope(world.settings.database_url) as session:
            row = session.exec(select(Mt5Connection)).one()
            assert MANAGER_PASSWORD.encode() not in row.credentials_encrypted
        result = api.post(f"/api/v1/connections/{created.json()['id']}/test", headers=headers).json()
        assert result["ok"] is True, result
        assert result["accounts"] == len(broker.accounts())

        wrong = api.patch(f"/api/v1/connections/{created.json()['id']}", headers=headers,
                          json={"password": "guess"})
        assert wrong.status_code == 200
        result = api.post(f"/api/v1/connections/{created.json()['id']}/test", headers=headers).json()
        assert result["ok"] is False
        assert "wrong manager password" in result["message"]
        assert "guess" not in str(result)


def test_an_untrusted_certificate_is_a_clear_failure(
        world: World, clean: None, redis_url: str, tmp_path: Path) -> None:
    _, cert, key = self_signed_tls(tmp_path)
    fake, _, _ = make_feed_fake(accounts=2)
    with serving(fake, tls=(cert, key)) as url, TestClient(create_api(world.settings)) as api:
        headers = world.headers(world.a)
        created = api.post("/api/v1/connections", headers=headers,
                           json={"server": url, "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD}).json()
        result = api.post(f"/api/v1/connections/{created['id']}/test", headers=headers).json()
        assert result["ok"] is False
        assert "certificate not trusted" in result["message"]


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("http://mt5.broker.example:443", "https://host:port"),
        ("https://mt5.broker.example:70000", "port 1-65535"),
        ("https://mt5 broker.example", "https://host:port"),
        ("https://mt5.broker.example/api/path", "https://host:port"),
    ],
)
def test_bad_web_api_addresses_are_422_naming_the_server(
        api: TestClient, world: World, clean: None, server: str, says: str) -> None:
    response = api.post("/api/v1/connections", headers=world.headers(world.a),
                        json={"server": server, "login": 1, "password": "p"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert "server" in [error["loc"][-1] for error in errors]
    assert says in str(errors)
    assert api.get("/api/v1/connections", headers=world.headers(world.a)).json() == []
