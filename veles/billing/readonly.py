"""Read-only while dunning: a tenant past its grace period keeps its live figures, and every
change through the API is refused with the reason and where to pay.

The portal asks the same question (`refusal`) before every change it makes, so both refuse the
same tenants with the same sentence.

The API asks it in one app-wide dependency (`veles/api/read_only.py`), so a route added later
cannot forget it. This module imports nothing of the API or the portal: both import it.
"""

from __future__ import annotations

from models.billing import BillingStatus
from models.db import session_scope
from models.tenancy import Tenant
from veles.config import Settings
from veles.services.permissions import PermissionDenied

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
