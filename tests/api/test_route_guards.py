"""Every API route refuses an anonymous caller, found from the app itself, so a route added later
cannot ship without its guard. The few public routes are listed here by name, each with why."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

# Public on purpose: sign-in and token exchange (nobody holds a token yet), the password reset
# and accepting an invitation (its user cannot sign in yet; the e-mailed link's token stands for
# the check), health probes for
# load balancers, Prometheus scraping (this host or a METRICS_TOKEN bearer: tests/api/test_http_guards.py),
# a report link whose HMAC signature stands for the check, and the portal's refresh-cookie routes
# (the sign-in's refresh token, handed over once or in the HttpOnly cookie, stands for the check,
# as for /auth/refresh and /auth/logout: tests/api/test_portal_session.py).
PUBLIC = {
    ("POST", "/api/v1/auth/portal/session"),
    ("POST", "/api/v1/auth/portal/refresh"),
    ("POST", "/api/v1/auth/portal/logout"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/verify"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/password-reset/confirm"),
    ("POST", "/api/v1/invitations/accept"),
    ("GET", "/api/v1/reports/{report_id}/file"),
    ("POST", "/api/v1/billing/webhook"),  # Stripe's signature on the body stands for the check
    ("GET", "/api/health"),
    ("GET", "/api/health/ready"),
    ("GET", "/metrics"),
}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document (FastAPI includes routers lazily, so `app.routes`
    does not list them; the document does, and it is what integrators build against)."""
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )


def test_every_route_but_the_public_ones_refuses_anonymous(client: TestClient, app: FastAPI) -> None:
    routes = _routes(app)
    assert len(routes) > 20  # the enumeration sees the whole API, not an empty router
    refused = []
    for method, path in routes:
        if (method, path) in PUBLIC or not path.startswith("/api/v1"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method, url, json={})
        if response.status_code != 401:
            refused.append(f"{method} {path}: {response.status_code}")
    assert refused == []


def test_a_forged_token_is_refused_everywhere(client: TestClient, app: FastAPI) -> None:
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwidGVuYW50X2lkIjoxfQ."}
    for method, path in _routes(app):
        if (method, path) in PUBLIC or not path.startswith("/api/v1"):
            continue
        response = client.request(method, re.sub(r"\{[^}]+\}", "1", path), json={}, headers=forged)
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"


def test_the_public_list_names_only_routes_that_exist(app: FastAPI) -> None:
    assert set(_routes(app)) >= PUBLIC - {("GET", "/metrics")}  # /metrics is left out of the document
