"""Who the load test signs in as, and one sign-in per Locust process.

A real desk signs in once a shift; a load test whose users each signed in at start would measure
Argon2 and the sign-in rate limit instead of the portal. So each Locust process (the master's
workers each run their own) signs in once (again every RENEW_S) and its users share the access
token. The credentials default to the demo's (`veles demo` prints them) and come from VELES_LOADTEST_EMAIL and
VELES_LOADTEST_PASSWORD otherwise; the admin scenario signs in as VELES_LOADTEST_ADMIN_EMAIL /
VELES_LOADTEST_ADMIN_PASSWORD (a tenant admin: `make loadtest` adds one to the demo's broker).
"""

from __future__ import annotations

import os
import time

from gevent.lock import Semaphore

from veles.bench.dashboard_sockets import sign_in
from veles.config import Settings

# Signed in again this long after: before the access token's lifetime (30 minutes by default).
RENEW_S = 15 * 60
_tokens: dict[str, tuple[float, str]] = {}
_lock = Semaphore()


DEALER, ADMIN = "dealer", "admin"


def credentials(who: str = DEALER) -> tuple[str, str]:
    """The e-mail and password `who` (DEALER or ADMIN) signs in with."""
    if who == ADMIN:
        email = os.environ.get("VELES_LOADTEST_ADMIN_EMAIL", "")
        password = os.environ.get("VELES_LOADTEST_ADMIN_PASSWORD", "")
        if not email or not password:
            raise RuntimeError("the admin scenario signs in as VELES_LOADTEST_ADMIN_EMAIL with "
                               "VELES_LOADTEST_ADMIN_PASSWORD: set both")
        return email, password
    demo = Settings.model_fields
    email = os.environ.get("VELES_LOADTEST_EMAIL") or str(demo["demo_email"].default)
    password = os.environ.get("VELES_LOADTEST_PASSWORD") or demo["demo_password"].default.get_secret_value()
    return email, password


def access_token(host: str, who: str = DEALER) -> str:
    """This process's access token of `who` for the portal at `host` (signed in on first use)."""
    with _lock:
        signed = _tokens.get(f"{who} {host}")
        if signed is None or time.monotonic() - signed[0] > RENEW_S:
            signed = _tokens[f"{who} {host}"] = (time.monotonic(), sign_in(host, *credentials(who))[0])
        return signed[1]
