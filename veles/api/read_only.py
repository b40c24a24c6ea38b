"""The API's side of read-only while dunning (`veles.billing.readonly` decides who is read-only).

One app-wide dependency, so a route added later cannot forget it: every /api/v1 request that is
not a read (GET, HEAD, OPTIONS), made with a valid token of a read-only tenant, is a 403. Signing
in and out (/api/v1/auth/) and Stripe's webhook (/api/v1/billing/) stay open: paying is how the
tenant gets out. FastAPI runs this sync dependency in a worker thread, so its database read never
blocks the event loop. It lives here, not in veles/billing, because the portal imports billing's
module too and an import of the API from there went round in a circle (locust's import order hit
it: loadtests -> veles_ui -> billing -> veles.api -> billing).
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from veles.api.deps import Context
from veles.billing.readonly import OPEN, READS, refusal
from veles.services.auth import AuthError, decode_token
from veles.services.signing_keys import keyring


def refuse_read_only(request: Request, ctx: Context) -> None:
    """403 for a change asked by a read-only tenant; nothing for anyone else (a bad token is the
    route's 401 to give)."""
    path = request.url.path
    if request.method in READS or not path.startswith("/api/v1/") or path.startswith(OPEN):
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return
    try:
        identity = decode_token(token.strip(), keyring(ctx.settings))
    except AuthError:
        return
    reason = refusal(ctx.settings, identity.tenant_id)
    if reason is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, reason)
