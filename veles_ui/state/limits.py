"""The portal's doors for people not signed in (/reset, /invite) count attempts like the API's:
`refusal` says why one may not go ahead, as the text to show, instead of raising."""

from __future__ import annotations

from veles.config import get_settings
from veles.services.ratelimit import LimiterUnavailable, TooManyAttempts, check_attempts, shared_login_limiter


def refusal(ip: str | None, email: str | None, *, kind: str, what: str, ip_limit: int,
            email_limit: int | None = None) -> str:
    """Why this attempt may not go ahead (too many, or the counters are down), or "" if it may.
    Blocking (Redis): run it in a thread."""
    try:
        check_attempts(shared_login_limiter(get_settings()), ip, email, kind=kind, ip_limit=ip_limit,
                       email_limit=email_limit, what=what)
    except LimiterUnavailable as exc:
        return exc.user_message
    except TooManyAttempts as exc:
        return str(exc)
    return ""
