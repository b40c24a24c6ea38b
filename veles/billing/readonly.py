"""Read-only while dunning: a tenant past its grace period keeps its live figures, and every
change through the API is refused with the reason and where to pay.

The portal asks the same question (`refusal`) before every change it makes, so both refuse the
same tenants with the same sentence.

One app-wide dependency (`refuse_read_only`), so a route added later cannot forget it: every
/api/v1 request that is not a read (GET, HEAD, OPTIONS), made with a valid token of a read-only
tenant, is a 403. Signing in and out (/api/v1/auth/) and Stripe's webhook (/api/v1/billing/)
stay open: paying is how the tenant gets out. FastAPI runs this sync dependency in a worker
thread, so its database read never blocks the event loop.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from models.billing import BillingStatus
from models.db import session_scope
from models.tenancy import Tenant
from veles.api.deps import Context
from veles.config import Settings
from veles.services.auth import AuthError, decode_token
from veles.services.permissions import PermissionDenied
from veles.services.signing_keys import keyring

READS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN = ("/api/v1/auth/", "/api/v1/billing/")
MESSAGE = ("Your subscription is past due, so your portal is read-only: live figures stay, changes are "
           "refused until payment. Pay the open invoice (Stripe e-mailed its link); plans: {portal}/plan")


def billing_status(database_url: str, tenant_id: int) -> BillingStatus | None:
    """The tenant's billing status (blocking: database)."""
    with session_scope(database_url) as session:
        tenant = session.get(Tenant, tenant_id)
        return None if tenant is None else tenant.billing_status


class BillingReadOnly(PermissionDenied):
    """A change asked by a tenant that billing made read-only; the message says why and what to do."""


def refusal(settings: Settings, tenant_id: int) -> str | None:
    """Why this tenant may not change anything now (its subscription is past its grace period),
    or None when it may (blocking: database)."""
    if billing_status(settings.database_url, tenant_id) is BillingStatus.READ_ONLY:
        return MESSAGE.format(portal=settings.portal_url)
    return None


def refuse_change(settings: Settings, tenant_id: int) -> None:
    """Raise BillingReadOnly when `refusal` gives a reason (blocking: database)."""
    reason = refusal(settings, tenant_id)
    if reason is not None:
        raise BillingReadOnly(reason)


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
