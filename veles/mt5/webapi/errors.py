"""What can go wrong talking to an MT5 Web API server, each naming the step that failed and the
server's retcode, so a broker's administrator can act on a single line."""

from __future__ import annotations

from veles.mt5.gateway import GatewayError
from veles.mt5.webapi.retcodes import Retcode


class WebApiError(GatewayError):
    """A Web API request failed at `step` (e.g. "auth/answer", "position/get_batch")."""

    def __init__(self, step: str, message: str, retcode: Retcode | None = None) -> None:
        self.step = step
        self.message = message
        self.retcode = retcode
        suffix = f" (retcode {retcode})" if retcode is not None else ""
        super().__init__(f"{step}: {message}{suffix}")


class AuthError(WebApiError):
    """The server refused the manager: wrong password, unknown login, IP not allowed, old version."""


class ServerNotTrusted(AuthError):
    """The server could not prove it knows the manager's password (wrong `cli_rand_answer`)."""


class RightsError(WebApiError):
    """The manager account lacks the right for a request (retcode 8)."""


class SessionLost(WebApiError):
    """HTTP 401/403 or the connection broke: the session is gone and must be authenticated again."""


class ProtocolError(WebApiError):
    """The answer is not what the Web API sends (not JSON, a field missing or not a number)."""
