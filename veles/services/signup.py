"""Self-service sign-up: a broker opens its tenant and the tenant's first administrator, and the
e-mailed link proves the address before anything runs.

- Validation happens before anything is written, and every refusal names the form field it is
  about, so the sign-up page can show the message next to that field and keep what was typed.
- The answer never tells whether an address has an account: for a new address the tenant is
  created `pending_verification` and a confirmation link is mailed; for a taken one nothing is
  created and the address gets a note saying so. Either way the caller shows `ANSWER` and sends
  the mail after showing it (`send_signup_mail`), so the page looks and takes the same.
- Nothing runs for a pending tenant (the engine starts supervisors for active tenants only, and
  signing in says to confirm first). `confirm_signup` spends the link, activates the tenant and
  returns its id, and the caller starts the tenant's engine then.
- Every new tenant is a `TRIAL_DAYS` trial with Starter's limits, whatever plan was picked: a paid
  plan is only ever given by a paid Stripe subscription (`veles.billing`). The pick is kept
  (`Tenant.plan_chosen`, and in the audit log) for the plan page's Upgrade to offer, and when the
  trial ends without a subscription the tenant goes through dunning like an unpaid invoice.
  Sign-ups are rate limited per IP by the callers (`veles.services.ratelimit.shared_signup_limiter`).
- A pending sign-up whose link has expired no longer holds its broker name or address: the next
  sign-up with either drops it, so nobody can squat a name or someone else's address.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from models.auth import EmailVerification
from models.billing import BillingStatus
from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, TenantStatus, User
from veles.config import Settings
from veles.services import messaging
from veles.services.audit import record
from veles.services.auth import hash_password
from veles.services.errors import InvalidInput
from veles.services.password_reset import portal_url
from veles.services.passwords import MIN_PASSWORD, check_password, personal_words
from veles.services.tokens import as_utc, token_hash

log = logging.getLogger(__name__)

__all__ = ["ANSWER", "MIN_PASSWORD", "SignupError", "SignupForm", "SignupMail", "VerificationLinkInvalid",
           "confirm_signup", "send_signup_mail", "sign_up", "validate"]

# Deliberately loose: one @, something on each side, a dot in the domain. Delivery proves the rest.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ANSWER = ("If this address can be used for a new account, we have sent it an e-mail with a link to "
          "confirm it. Follow the link to start your broker's portal, then sign in.")
REQUESTED, CONFIRMED = "tenant.signup", "tenant.signup_confirmed"


class SignupError(ValueError):
    """A sign-up field was refused; `field` is the form field's name, the message is safe to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class VerificationLinkInvalid(ValueError):
    """The confirmation link cannot be used (unknown, expired, already used); safe to show."""


@dataclass(frozen=True, slots=True)
class SignupForm:
    """What the sign-up page sends, already stripped of surrounding blanks (not the password)."""

    broker: str
    email: str
    password: str
    plan: str

    @classmethod
    def from_form(cls, form: dict[str, str]) -> SignupForm:
        """Build from a submitted form; missing fields become empty (and are then refused)."""
        return cls(
            broker=str(form.get("broker", "")).strip(),
            email=str(form.get("email", "")).strip().lower(),
            password=str(form.get("password", "")),
            plan=str(form.get("plan", "")).strip().lower() or Plan.STARTER.value,
        )


@dataclass(frozen=True, slots=True)
class SignupMail:
    """The e-mail to send once the caller has answered: a confirmation link, or a note that the
    address already has an account."""

    to: str
    subject: str
    text: str
    link: str | None = None


def validate(form: SignupForm) -> None:
    """Raise SignupError for the first field that is not acceptable (before touching the database)."""
    if not 2 <= len(form.broker) <= 120:
        raise SignupError("broker", "Broker name must be 2 to 120 characters.")
    if len(form.email) > 254 or not _EMAIL.match(form.email):
        raise SignupError("email", "Enter a valid email address.")
    try:
        check_password(form.password, user_inputs=personal_words(form.email, form.broker))
    except InvalidInput as exc:
        raise SignupError("password", exc.reason) from None
    if form.plan not in {plan.value for plan in Plan}:
        raise SignupError("plan", f"Unknown plan {form.plan!r}: choose starter, professional or enterprise.")


def _expired_pending(session: Session, tenant: Tenant) -> bool:
    """A pending sign-up none of whose links can still be followed."""
    if tenant.status != TenantStatus.PENDING_VERIFICATION:
        return False
    live = session.exec(select(EmailVerification).where(
        EmailVerification.tenant_id == tenant.id, col(EmailVerification.used_at).is_(None),
        col(EmailVerification.expires_at) > utcnow())).first()
    return live is None


def _drop(session: Session, tenant: Tenant) -> None:
    """Remove a pending sign-up that was never confirmed (nothing else was made for it)."""
    session.execute(delete(EmailVerification).where(col(EmailVerification.tenant_id) == tenant.id))
    session.execute(delete(User).where(col(User.tenant_id) == tenant.id))
    session.delete(tenant)
    session.flush()


def _already_used(settings: Settings, email: str) -> SignupMail:
    portal = portal_url(settings)
    return SignupMail(to=email, subject="Your Veles account", text=(
        "Someone (hopefully you) tried to open a new Veles account with this address, which already "
        f"has one.\n\nSign in at {portal}/login, or choose a new password at {portal}/forgot.\n\n"
        "If it was not you, ignore this e-mail: nothing was changed.\n"))


def sign_up(settings: Settings, form: SignupForm, *, ip: str | None = None) -> SignupMail:
    """Create the tenant (pending verification, a Starter trial) and its tenant_admin, and return
    the confirmation mail to send; for an address that already has an account create nothing and
    return a note to that address instead. The caller answers `ANSWER` either way.

    A broker name in use is refused (SignupError on `broker`); one transaction, so a refusal writes
    nothing.
    """
    validate(form)
    with session_scope(settings.database_url) as session:
        named = session.exec(select(Tenant).where(Tenant.name == form.broker)).first()
        if named is not None and _expired_pending(session, named):
            _drop(session, named)
            named = None
        if named is not None:
            raise SignupError("broker", "A broker with this name already has an account.")
        holder = session.exec(select(User).where(User.email == form.email)).first()
        if holder is not None:
            held = session.get(Tenant, holder.tenant_id)
            if held is None or not _expired_pending(session, held):
                record(session, REQUESTED, tenant_id=None, ip=ip,
                       details={"email": form.email, "created": False})
                return _already_used(settings, form.email)
            _drop(session, held)
        tenant = Tenant(name=form.broker, plan=Plan.STARTER, status=TenantStatus.PENDING_VERIFICATION,
                        billing_status=BillingStatus.TRIALING, plan_chosen=Plan(form.plan),
                        trial_ends_at=utcnow() + timedelta(days=settings.trial_days))
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email=form.email, password_hash=hash_password(form.password),
                    role=Role.TENANT_ADMIN)
        session.add(user)
        session.flush()
        assert user.id is not None
        token = secrets.token_urlsafe(32)
        session.add(EmailVerification(tenant_id=tenant.id, user_id=user.id, token_hash=token_hash(token),
                                      expires_at=utcnow() + timedelta(hours=settings.verify_email_hours)))
        # tenant_id None: an unconfirmed sign-up may be dropped, and audit rows are never deleted
        record(session, REQUESTED, tenant_id=None, ip=ip,
               details={"email": form.email, "created": True, "broker": form.broker,
                        "plan_picked": form.plan, "tenant": tenant.id})
    link = f"{portal_url(settings)}/verify-email?{urlencode({'token': token})}"
    return SignupMail(to=form.email, subject="Confirm your e-mail address for Veles", link=link, text=(
        f"Confirm this address to open the Veles portal of {form.broker}:\n{link}\n\n"
        f"The link works once, within {settings.verify_email_hours} hours. Your account starts as a "
        f"{settings.trial_days}-day trial of the Starter plan.\n\n"
        "If you did not sign up, ignore this e-mail: nothing starts until the link is followed.\n"))


def send_signup_mail(settings: Settings, mail: SignupMail) -> None:
    """Send it. Runs after the caller has answered, so a failure cannot be reported to the person
    signing up (that would tell whether the address has an account): it is logged for operators."""
    try:
        messaging.send_email(settings, [mail.to], mail.subject, mail.text)
    except (messaging.MessagingError, ValueError):
        log.exception("the sign-up e-mail to %s could not be sent", mail.to)


def confirm_signup(settings: Settings, token: str, *, ip: str | None = None) -> int:
    """Follow a confirmation link: spend it, mark the address verified and the tenant active;
    returns the tenant's id (the caller starts its engine). VerificationLinkInvalid otherwise."""
    with session_scope(settings.database_url) as session:
        found = select(EmailVerification).where(EmailVerification.token_hash == token_hash(token))
        row = session.exec(found).first() if token else None
        if row is None:
            raise VerificationLinkInvalid("This confirmation link is not valid (it may be incomplete).")
        if row.used_at is not None:
            raise VerificationLinkInvalid("This confirmation link was already used: sign in.")
        if as_utc(row.expires_at) <= utcnow():
            raise VerificationLinkInvalid("This confirmation link has expired: sign up again.")
        spent = session.execute(update(EmailVerification)
                                .where(col(EmailVerification.id) == row.id,
                                       col(EmailVerification.used_at).is_(None))
                                .values(used_at=utcnow()))
        tenant, user = session.get(Tenant, row.tenant_id), session.get(User, row.user_id)
        if spent.rowcount != 1 or tenant is None or user is None:  # type: ignore[attr-defined]
            raise VerificationLinkInvalid("This confirmation link was already used: sign in.")
        user.email_verified_at = utcnow()
        if tenant.status == TenantStatus.PENDING_VERIFICATION:
            tenant.status = TenantStatus.ACTIVE
            tenant.trial_ends_at = utcnow() + timedelta(days=settings.trial_days)
        session.add_all([user, tenant])
        record(session, CONFIRMED, tenant_id=tenant.id, actor_user_id=user.id, target=f"user:{user.id}",
               ip=ip)
        assert tenant.id is not None
        return tenant.id
