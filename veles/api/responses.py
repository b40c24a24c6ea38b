"""The status codes every API operation declares, so the OpenAPI document lists every answer a
client can get (schemathesis checks each response's status against it).

Answers that come from the app's common machinery rather than a route's own code are declared
here, from what each route is wired to, so a new route cannot forget them: 429 (every /api/v1
route is rate limited), 503 (a database restart, an engine not answering), 413 (a body over
MAX_REQUEST_BYTES) and 400 (a body that is not JSON text at all), 401 (a route that needs a
token), 403 (a route that checks a permission) and 404 (a row id in the path that the tenant
does not have). A route declares the rest itself (`responses=` on the decorator: 409, a
route-specific 403 or 503), and its own text wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from veles.api.deps import current_identity

COMMON: dict[int, dict[str, Any]] = {
    400: {"description": "The body could not be read as JSON text (e.g. it is not UTF-8)."},
    401: {"description": "Not signed in, or the token is expired, forged or its sessions were ended."},
    403: {"description": "The caller's role may not do this."},
    404: {"description": "The caller's tenant has no such row."},
    413: {"description": "The request body is larger than MAX_REQUEST_BYTES."},
    429: {"description": "Too many requests from this IP, user or tenant; see Retry-After."},
    503: {"description": "A dependency (database, engine) is unavailable right now; retry shortly."},
}


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _answers(route: APIRoute) -> list[int]:
    calls = list(_calls(route.dependant))
    codes = [429, 503]
    if current_identity in calls:
        codes.append(401)
    if any(getattr(call, "__qualname__", "").startswith("requires.") for call in calls):
        codes.append(403)
    if "{" in route.path:
        codes.append(404)
    if route.body_field is not None:
        codes += [400, 413]
    return codes


def declare_responses(routers: Iterable[APIRouter]) -> None:
    """Add the common answers to every /api/v1 route of `routers` that does not describe its own."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path.startswith("/api/v1/"):
                for code in _answers(route):
                    route.responses.setdefault(code, COMMON[code])
