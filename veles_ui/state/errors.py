"""What a portal form says when its action fails: every failure is shown under the form, none is
swallowed.

A refusal a user can act on (a wrong field, a missing permission, a clash) is shown as the service
worded it. A server-side failure is shown as a plain sentence saying what is wrong and who can fix
it; its technical text (key configuration, SQL, a stack trace) goes to the log only. Before this,
"Add connection" with CREDENTIALS_KEYS unset raised out of the event handler: the button did
nothing and the user was told nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import InterfaceError, OperationalError

from veles.reports.errors import ReportError
from veles.risk.calculator import CalcError
from veles.services.credentials import CredentialsError
from veles.services.messaging import MessagingError
from veles.services.ray_runtime import EngineUnreachable
from veles_ui.state.session import USER_ERRORS

log = logging.getLogger(__name__)

# Refusals whose message is written for the user who caused them.
SAFE_ERRORS: tuple[type[Exception], ...] = (*USER_ERRORS, CalcError, ReportError)

CREDENTIALS_UNUSABLE = (
    "MT5 credentials cannot be stored or read on this server: its CREDENTIALS_KEYS setting is missing "
    "or wrong. Nothing was saved; ask the platform's administrator to set it."
)
DATABASE_DOWN = "The database is unavailable right now; nothing was changed. Try again shortly."
ENGINE_DOWN = "The risk engine cannot be reached right now. Try again shortly."
MESSAGE_NOT_SENT = "The message could not be sent: {reason}"
INTERNAL = "Something went wrong on the server; it has been logged. Try again, or tell your administrator."


def shown(exc: Exception, safe: tuple[type[Exception], ...] = ()) -> str:
    """The sentence to show under the form for `exc`; anything unexpected is logged with its
    traceback. `safe` adds the caller's own refusal types whose text is meant for the user."""
    if isinstance(exc, SAFE_ERRORS + safe):
        return str(exc)
    if isinstance(exc, CredentialsError):
        log.error("credentials unusable: %s", exc)
        return CREDENTIALS_UNUSABLE
    if isinstance(exc, OperationalError | InterfaceError):
        log.error("database unavailable: %s", exc)
        return DATABASE_DOWN
    if isinstance(exc, EngineUnreachable):
        log.error("engine unreachable: %s", exc)
        return ENGINE_DOWN
    if isinstance(exc, MessagingError):  # says which channel and why, never a secret
        return MESSAGE_NOT_SENT.format(reason=exc)
    log.error("a portal action failed", exc_info=exc)
    return INTERNAL
