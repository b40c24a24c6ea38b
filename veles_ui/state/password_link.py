"""What the /invite and /reset pages share when the password is submitted through an e-mailed link.

Both pages refuse first by the per-IP counters, then run the service call in a thread (zxcvbn,
Argon2 and the database never touch the event loop) and show the outcome the same way: a field
error keeps the link usable, a link the service rejects replaces the form, a server fault is shown
under the form and never raised out of the handler. One function keeps the two pages from drifting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from veles.services.errors import InvalidInput
from veles_ui.state.errors import shown

T = TypeVar("T")


@dataclass(frozen=True)
class LinkSubmit(Generic[T]):
    """The outcome of one submit: `value` when it worked, otherwise which message goes where."""

    value: T | None = None
    done: bool = False
    error_field: str = ""
    error: str = ""
    link_error: str = ""


async def submit_password(
    refusal: Callable[[], str],
    action: Callable[[], T],
    link_invalid: type[Exception],
) -> LinkSubmit[T]:
    """Run `refusal` then `action` off the loop and sort the result into the page's messages."""
    refused = await asyncio.to_thread(refusal)
    if refused:
        return LinkSubmit(error_field="password", error=refused)
    try:
        value = await asyncio.to_thread(action)
    except InvalidInput as exc:
        return LinkSubmit(error_field=exc.field, error=exc.reason)
    except link_invalid as exc:
        return LinkSubmit(link_error=str(exc))
    except Exception as exc:  # a server fault: shown under the form, never raised out of the handler
        return LinkSubmit(error=shown(exc))
    return LinkSubmit(value=value, done=True)
