"""How the data services' refusals become HTTP answers, registered once on the app.

Services raise plain exceptions (they also serve the portal); here each kind gets its status:
a refused field 422 in FastAPI's own error shape (`loc` names the field), a row the tenant does not
have 404, a clash with stored data or the plan 409, an unusable credentials key 503, and a
database that cannot be reached (a restart under way) 503 with Retry-After.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from veles.risk.calculator import CalcError
from veles.services.credentials import CredentialsError
from veles.services.errors import Conflict, InvalidInput, NotFound


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput | CalcError)
    message = exc.reason if isinstance(exc, InvalidInput) else str(exc).split(": ", 1)[-1]
    detail = [{"loc": ["body", *exc.field.split(".")], "msg": message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)


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


def install_error_handlers(app: FastAPI) -> None:
    """Map the services' exceptions to HTTP answers on `app`."""
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(CalcError, _invalid)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(CredentialsError, _credentials)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
