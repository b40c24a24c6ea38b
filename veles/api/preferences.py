"""Each user's own alert-delivery preferences: `GET/PUT /api/v1/me/notifications` (anyone signed
in). Which channels (portal, e-mail, SMS) each severity goes to, quiet hours in the user's time zone,
and the digest window that throttles e-mail and SMS; the rules are `veles.services.delivery`'s, which
the portal's settings page calls too. A refused field is a 422 naming it (`veles.api.errors`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from veles.api.db import TenantUnit
from veles.api.deps import CurrentIdentity
from veles.services.delivery import PreferencesForm, PreferencesView, my_preferences, update_my_preferences

router = APIRouter(prefix="/api/v1/me", tags=["notifications"])
_SIGNED_IN: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in"}}


@router.get("/notifications", responses=_SIGNED_IN)
def preferences(identity: CurrentIdentity, db: TenantUnit) -> PreferencesView:
    """Your alert-delivery preferences (the defaults until you save your own)."""
    return my_preferences(db, identity)


@router.put("/notifications", responses={
    **_SIGNED_IN, 422: {"description": "A refused field, e.g. SMS without a verified phone"}})
def save(form: PreferencesForm, identity: CurrentIdentity, db: TenantUnit) -> PreferencesView:
    """Replace your preferences. SMS needs a verified phone (sign in once with an SMS code)."""
    return update_my_preferences(db, identity, form)
