"""How refusals become HTTP answers, registered once on the app.

Every 422 of /api/v1 has ONE shape, FastAPI's own, whether FastAPI refused the request (a wrong
type, a missing field) or a service did (a rule the schema cannot say):

    {"detail": [{"loc": ["body", "quiet_start"], "msg": "quiet hours need both a start and an end",
                 "type": "value_error"}, ...]}

`loc` names the field: where it was sent (`body`, `query`, `path`, `header`), then its path inside
(a nested field is several entries); `msg` is a sentence safe to show beside it; `type` a machine
kind. The submitted value is never echoed back (it may be a password). The OpenAPI document
describes exactly this (`HTTPValidationError`) on every operation that can answer 422.

Other refusals: a row the tenant does not have 404, a clash with stored data or the plan 409, an
unusable credentials key 503, and a database that cannot be reached (a restart under way) 503
with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import validation_error_response_definition
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from veles.plans import UPGRADE_PATH
from veles.reports.errors import ReportInputError
from veles.risk.calculator import CalcError
from veles.services.credentials import CredentialsError
from veles.services.errors import Conflict, InvalidInput, NotFound, PlanLimit


def field_errors(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    """The 422 answer for `errors` (each with `loc`, `msg`, `type`; anything else is dropped)."""
    detail = [{"loc": list(e["loc"]), "msg": str(e["msg"]), "type": str(e["type"])} for e in errors]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return field_errors(exc.errors())


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    """A service refused a body field: `field` is its dotted path."""
    assert isinstance(exc, InvalidInput | CalcError | ReportInputError)
    message = exc.reason if isinstance(exc, InvalidInput) else str(exc).split(": ", 1)[-1]
    return field_errors([{"loc": ["body", *exc.field.split(".")], "msg": message, "type": "value_error"}])


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    """409; a plan limit also names where to upgrade (`upgrade_url`, the portal's plan page)."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, PlanLimit):
        body["upgrade_url"] = f"{request.app.state.context.settings.portal_url}{UPGRADE_PATH}"
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)


async def _credentials(_request: Request, _exc: Exception) -> JSONResponse:
    # The exception's text may describe the key configuration; the client gets a generic line.
    return JSONResponse({"detail": "Stored credentials cannot be used: the server's CREDENTIALS_KEYS "
                                   "setting is missing or wrong."},
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


async def _database_down(_request: Request, _exc: Exception) -> JSONResponse:
    # The pool drops dead connections (pool_pre_ping) and reconnects on the next request, so the
    # client is told to retry rather than that the server is broken.
    return JSONResponse({"detail": "The database is unavailable; try again shortly."},
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "2"})


def _documented(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """`app.openapi` with the 422 shape above on every operation that declares a 422 (FastAPI adds
    its schema only where it made the 422 itself, not where a route described its own)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422")
                if answer is not None:
                    answer["content"] = {"application/json": {"schema": {"$ref": _PROBLEM}}}
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ValidationError"] = _FIELD_ERROR
        schemas.setdefault("HTTPValidationError", validation_error_response_definition)
        return schema

    return openapi


_PROBLEM = "#/components/schemas/HTTPValidationError"
_FIELD_ERROR: dict[str, Any] = {
    "title": "ValidationError",
    "description": "One refused field: where it was sent and its path (`loc`), why (`msg`), and a kind "
                   "(`type`). The value sent is never echoed.",
    "type": "object",
    "properties": {
        "loc": {"title": "Location", "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "body, query, path or header, then the field's path inside it."},
        "msg": {"title": "Message", "type": "string", "description": "Safe to show beside the field."},
        "type": {"title": "Error Type", "type": "string"},
    },
    "required": ["loc", "msg", "type"],
}


def install_error_handlers(app: FastAPI) -> None:
    """Map refusals to HTTP answers on `app`, and document the 422 shape in its OpenAPI."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(CalcError, _invalid)
    app.add_exception_handler(ReportInputError, _invalid)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(CredentialsError, _credentials)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    app.openapi = _documented(app)  # type: ignore[method-assign]
