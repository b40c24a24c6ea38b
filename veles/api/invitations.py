"""Pending invitations: the admins' list with resend and revoke (`MANAGE_USERS`), and the public
`POST /api/v1/invitations/accept` that the e-mailed link's holder uses to choose a password, which
makes the user. The rules live in `veles.services.invitations`, shared with the portal's users page
and /invite; another tenant's invitation id answers 404, like one that does not exist.

Accepting is rate limited per client IP like the other doors that take a password from someone not
signed in (the same counters as the portal's /invite), and answers 503 when the counters are down.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Response, status
from pydantic import BaseModel, Field

from veles.api.auth_routes import enforce_login_limit
from veles.api.db import PlatformUnit, TenantUnit
from veles.api.deps import ClientIp, Context
from veles.api.users import ERRORS, Admin  # the same callers (MANAGE_USERS) and refusals as the users routes
from veles.services.invitations import (
    ACCEPT_IP_LIMIT,
    InvitationInvalid,
    InvitationView,
    accept,
    list_invitations,
    resend,
    revoke,
    send_accepted_mail,
    send_invitation_mail,
)
from veles.services.permissions import PermissionDenied

router = APIRouter(prefix="/api/v1", tags=["users"])
InvitationId = Annotated[int, Path(gt=0, lt=2**31, description="An invitation id of your tenant.")]
ONE = {**ERRORS, 404: {"description": "No such invitation in your tenant"},
       409: {"description": "Already accepted or revoked"}}


class AcceptRequest(BaseModel):
    """The token from the invitation link and the password chosen (kept exactly as typed)."""

    token: str = Field(min_length=16, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class AcceptDone(BaseModel):
    """The user is made in the inviting tenant: sign in with this address and the password chosen."""

    email: str


def _forbidden(exc: PermissionDenied) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))


@router.get("/invitations", responses=ERRORS)
def invitations(identity: Admin, db: TenantUnit) -> list[InvitationView]:
    """Your tenant's invitations not yet accepted nor revoked (expired ones too, to resend)."""
    return list_invitations(db, identity)


@router.post("/invitations/{invitation_id}/resend", responses=ONE)
def resend_invitation(invitation_id: InvitationId, identity: Admin, db: TenantUnit, ip: ClientIp,
                      ctx: Context, background: BackgroundTasks) -> InvitationView:
    """E-mail the invitation again with a new link and a new expiry; the older link stops working."""
    try:
        view, mail = resend(db, ctx.settings, identity, invitation_id, ip=ip)
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    background.add_task(send_invitation_mail, ctx.settings, mail)
    return view


@router.post("/invitations/{invitation_id}/revoke", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
def revoke_invitation(invitation_id: InvitationId, identity: Admin, db: TenantUnit, ip: ClientIp) -> Response:
    """Withdraw the invitation: its link stops working at once."""
    try:
        revoke(db, identity, invitation_id, ip=ip)
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitations/accept",
             responses={400: {"description": "The link is not valid, expired, revoked or already used, or "
                                             "the address has an account meanwhile"},
                        422: {"description": "The password is too short or guessable"},
                        429: {"description": "Too many attempts from this IP"},
                        503: {"description": "Rate-limit store down"}})
def accept_invitation(request: AcceptRequest, ctx: Context, ip: ClientIp, db: PlatformUnit,
                      background: BackgroundTasks) -> AcceptDone:
    """Choose your password through the invitation link's token: your user is made in the inviting
    tenant with the role you were invited with, and the inviting admin is told by e-mail. A refused
    password is a 422 naming `password` (the link stays usable)."""
    enforce_login_limit(ctx, ip, None, kind="invite", ip_limit=ACCEPT_IP_LIMIT, what="invitation")
    try:
        done = accept(db, request.token, request.password, ip=ip)
    except InvitationInvalid as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    if done.notice is not None:
        background.add_task(send_accepted_mail, ctx.settings, done.notice)
    return AcceptDone(email=done.email)
