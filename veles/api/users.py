"""The tenant's users (`/api/v1/users`, tenant admins: `MANAGE_USERS`) and each user's own password
and phone (`/api/v1/me/...`, anyone signed in). The rules live in `veles.services.users`, which the
portal's users page calls too; another tenant's user id answers 404, like one that does not exist.
`POST /api/v1/users` invites (`veles.services.invitations`): the user is made when the invitee
follows the e-mailed link; the pending invitations are `veles.api.invitations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Response, status
from pydantic import BaseModel, Field

from veles.api.db import TenantUnit
from veles.api.deps import ClientIp, Context, CurrentIdentity, requires
from veles.services.auth import Identity
from veles.services.invitations import ANSWER, InvitationForm, InvitationView, invite, send_invitation_mail
from veles.services.permissions import Permission, PermissionDenied
from veles.services.users import (
    PasswordChange,
    PhoneChange,
    RoleChange,
    UserView,
    change_password,
    change_phone,
    change_role,
    deactivate_user,
    get_user,
    list_users,
)

router = APIRouter(prefix="/api/v1", tags=["users"])
Admin = Annotated[Identity, Depends(requires(Permission.MANAGE_USERS))]
UserId = Annotated[int, Path(gt=0, lt=2**31, description="A user id of your tenant.")]  # an INTEGER key
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role may not manage users"},
}
ONE = {**ERRORS, 404: {"description": "No such user in your tenant"},
       409: {"description": "Not on yourself"}}


class InvitationSent(BaseModel):
    """The same answer for every address, whether unknown, already yours or another broker's user."""

    invitation: InvitationView
    detail: str = Field(default=ANSWER)


@contextmanager
def _forbidden_as_403() -> Iterator[None]:
    """The services re-check permissions (e.g. only platform admins touch platform admins)."""
    try:
        yield
    except PermissionDenied as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc


@router.get("/users", responses=ERRORS)
def users(identity: Admin, db: TenantUnit) -> list[UserView]:
    """Every user of your tenant."""
    return list_users(db, identity)


@router.post("/users", status_code=status.HTTP_201_CREATED, responses=ERRORS)
def invite_user(form: InvitationForm, identity: Admin, db: TenantUnit, ip: ClientIp, ctx: Context,
                background: BackgroundTasks) -> InvitationSent:
    """Invite an address with a role: it is e-mailed a link (valid INVITE_HOURS) to choose a password,
    which makes the user. The answer is the same for every address, and the e-mail is written and
    sent after it: an address that already has an account (yours or another broker's) is told so by
    the e-mail, never you. The invitation is in `GET /api/v1/invitations` until accepted."""
    with _forbidden_as_403():
        view, mail = invite(db, ctx.settings, identity, form, ip=ip)
    background.add_task(send_invitation_mail, ctx.settings, mail)
    return InvitationSent(invitation=view)


@router.get("/users/{user_id}", responses=ONE)
def user(user_id: UserId, identity: Admin, db: TenantUnit) -> UserView:
    """One user of your tenant."""
    return get_user(db, identity, user_id)


@router.patch("/users/{user_id}", responses=ONE)
def set_role(user_id: UserId, change: RoleChange, identity: Admin, db: TenantUnit, ip: ClientIp) -> UserView:
    """Change a user's role, at once: their access tokens stop working (401) and a refresh gives
    them one with the new role."""
    with _forbidden_as_403():
        return change_role(db, identity, user_id, change, ip=ip)


@router.post("/users/{user_id}/deactivate", responses=ONE)
def deactivate(user_id: UserId, identity: Admin, db: TenantUnit, ip: ClientIp) -> UserView:
    """Stop a user from signing in and end their sign-ins: their tokens are refused from the next request."""
    with _forbidden_as_403():
        return deactivate_user(db, identity, user_id, ip=ip)


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT,
            responses={401: {"description": "Not signed in"}, 422: {"description": "Wrong current password"}})
def new_password(change: PasswordChange, identity: CurrentIdentity, db: TenantUnit, ip: ClientIp) -> Response:
    """Change your password; all your sign-ins end (sign in again with the new one)."""
    change_password(db, identity, change, ip=ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/me/phone", responses={401: {"description": "Not signed in"},
                                    422: {"description": "Wrong current password, or a bad number"}})
def new_phone(change: PhoneChange, identity: CurrentIdentity, db: TenantUnit, ip: ClientIp) -> UserView:
    """Set or remove your phone number, and turn SMS codes at sign-in on or off; needs your current
    password (`current_password`)."""
    return change_phone(db, identity, change, ip=ip)
