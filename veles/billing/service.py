"""What Stripe's events do to a tenant: its plan and billing status follow its subscription.

Rules (each has a test in tests/billing):
- **Once.** Every event's id is stored (`billing_event`) in the transaction that applies it; a
  second delivery of the same id changes nothing (a concurrent one loses on the primary key).
- **The subscription decides, not arrival order.** A subscription event carries the subscription
  as it was when Stripe made the event; the tenant keeps the time of the newest state it applied
  (`subscription_event_at`) and an older one arriving later is recorded as stale and changes
  nothing. Two states made in the same second cannot be ordered by time, so the subscription is
  then read from Stripe, whose answer is the newest state. `checkout.session.completed` names a
  subscription without carrying it: it is read from Stripe too. A cancelled subscription never
  comes back (Stripe cannot reactivate one), so a stale "active" cannot undo a cancellation.
- **Invoices notify.** `invoice.payment_failed` e-mails the tenant's administrators with the
  invoice's payment link, `invoice.paid` records the payment; the subscription's own
  `customer.subscription.updated` (past_due, then active) moves the status.
- **The engine follows at once.** A plan change is committed with the event and returned as an
  `EngineAction`; the caller pushes it to the running engine (`apply_plan`): a downgrade closes
  the newest connections the plan has no room for (the reason on their rows, and the over-limit
  usage in the audit entry), an upgrade opens those refused before.

Everything here is blocking (database, Stripe): the web tier runs it in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.billing import BillingEvent, BillingStatus
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, TenantStatus, User
from veles.billing.account import stored_usage
from veles.billing.catalog import plan_of_price
from veles.billing.client import stripe_client, with_retries
from veles.config import Settings
from veles.plans import PLANS, PlanLimitExceeded, check_usage
from veles.services import messaging
from veles.services.audit import record

log = logging.getLogger(__name__)

HANDLED = frozenset({
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
})
PAID = frozenset({"active", "trialing"})
UNPAID = frozenset({"past_due", "unpaid", "incomplete"})
ENDED = frozenset({"canceled", "incomplete_expired", "paused"})

Fetch = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Mail:
    """An e-mail to send after the commit (a failure to send is logged, never undoes the change)."""

    to: tuple[str, ...]
    subject: str
    text: str


@dataclass(slots=True)
class Applied:
    """What applying one event did; `engine` says what the caller must push to the engine."""

    event_id: str
    outcome: str
    tenant_id: int | None = None
    duplicate: bool = False
    plan_changed: bool = False
    suspend: bool = False
    resume: bool = False
    mails: list[Mail] = field(default_factory=list)


def stripe_fetch(settings: Settings) -> Fetch:
    """Read a subscription from Stripe (blocking: network, retried)."""
    client = stripe_client(settings)

    def fetch(subscription_id: str) -> Mapping[str, Any]:
        found = with_retries(lambda: client.v1.subscriptions.retrieve(subscription_id))
        return found.to_dict()

    return fetch


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def subscription_plan(subscription: Mapping[str, Any]) -> str | None:
    """The Veles plan a subscription is on (its first item's price), None if it sells no plan."""
    items = (subscription.get("items") or {}).get("data") or []
    for item in items:
        plan = plan_of_price(item.get("price")) or plan_of_price(item.get("plan"))
        if plan:
            return plan
    return plan_of_price(subscription.get("plan"))


def _period_end(subscription: Mapping[str, Any]) -> datetime | None:
    """Stripe moved `current_period_end` from the subscription to its items (2025-03-31.basil)."""
    if subscription.get("current_period_end"):
        return _ts(subscription["current_period_end"])
    items = (subscription.get("items") or {}).get("data") or []
    ends = [item["current_period_end"] for item in items if item.get("current_period_end")]
    return _ts(max(ends)) if ends else None


def _already(database_url: str, event_id: str) -> bool:
    with session_scope(database_url) as session:
        return session.get(BillingEvent, event_id) is not None


def apply_event(settings: Settings, event: Mapping[str, Any], fetch: Fetch | None = None) -> Applied:
    """Apply one verified Stripe event (a dict in Stripe's event shape) exactly once."""
    event_id, kind = str(event["id"]), str(event["type"])
    obj: Mapping[str, Any] = event["data"]["object"]
    created = _ts(event.get("created")) or datetime.now(UTC)
    tie, duplicate = _prior(settings.database_url, event_id, obj if kind.startswith("customer.subscription.")
                            else None, created)
    if duplicate:
        return Applied(event_id, "duplicate: already applied", duplicate=True)
    fetch = fetch or stripe_fetch(settings)
    snapshot: Mapping[str, Any] | None = None
    fetched = False
    if kind == "checkout.session.completed" and obj.get("subscription"):
        snapshot, fetched = fetch(str(obj["subscription"])), True
    elif kind.startswith("customer.subscription."):
        snapshot = obj
        if tie:
            snapshot, fetched = fetch(str(obj["id"])), True
    try:
        with session_scope(settings.database_url) as session:
            session.add(BillingEvent(id=event_id, type=kind[:64], created_at=created))
            session.flush()  # a concurrent delivery of the same id fails here, before any change
            applied = Applied(event_id, "ignored: not an event Veles acts on")
            if kind in HANDLED:
                applied = _apply(session, settings, kind, obj, snapshot, created, fetched, event_id)
            row = session.get(BillingEvent, event_id)
            assert row is not None
            row.tenant_ref, row.outcome = applied.tenant_id, applied.outcome[:255]
    except IntegrityError:
        if not _already(settings.database_url, event_id):
            raise  # another constraint: not a second delivery
        return Applied(event_id, "duplicate: already applied", duplicate=True)
    for mail in applied.mails:
        _send(settings, mail)
    return applied


def _prior(database_url: str, event_id: str, subscription: Mapping[str, Any] | None, created: datetime
           ) -> tuple[bool, bool]:
    """(tie, duplicate): whether the tenant already applied a state of this subscription made in
    the same second, and whether this very event was applied. The tenant is read before the
    ledger, so a concurrent delivery of this event that commits in between reads as a duplicate,
    never as a tie (which would read Stripe for nothing)."""
    with session_scope(database_url) as session:
        tenant = _tenant_for(session, subscription) if subscription is not None else None
        tie = tenant is not None and _aware(tenant.subscription_event_at) == created
        return tie, session.get(BillingEvent, event_id) is not None


def _tenant_for(session: Session, obj: Mapping[str, Any]) -> Tenant | None:
    """The tenant an object is about: Veles' own `tenant_id` metadata or client reference first,
    then the Stripe customer it holds."""
    metadata = obj.get("metadata") or {}
    for ref in (obj.get("client_reference_id"), metadata.get("tenant_id")):
        if ref and str(ref).isdigit():
            tenant = session.get(Tenant, int(ref))
            if tenant is not None and not tenant.is_platform:
                return tenant
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    if customer:
        return session.exec(select(Tenant).where(Tenant.stripe_customer_id == str(customer))).first()
    return None


def _locked(session: Session, tenant: Tenant) -> Tenant:
    """The tenant's row again, locked until the commit: two events of one tenant apply one after
    the other (PostgreSQL; SQLite serialises writers anyway)."""
    found = session.exec(select(Tenant).where(Tenant.id == tenant.id).with_for_update()).one()
    session.refresh(found)
    return found


def _apply(session: Session, settings: Settings, kind: str, obj: Mapping[str, Any],
           snapshot: Mapping[str, Any] | None, created: datetime, fetched: bool, event_id: str) -> Applied:
    tenant = _tenant_for(session, obj if kind.startswith(("checkout.", "invoice.")) or snapshot is None
                         else snapshot)
    if tenant is None:
        return Applied(event_id, f"ignored: no tenant for {obj.get('id')}")
    tenant = _locked(session, tenant)
    assert tenant.id is not None
    if kind == "checkout.session.completed":
        customer = obj.get("customer")
        if customer and tenant.stripe_customer_id != customer:
            tenant.stripe_customer_id = str(customer)
        if snapshot is None:
            return Applied(event_id, "checkout completed without a subscription", tenant.id)
    if kind.startswith("invoice."):
        return _invoice(session, settings, tenant, kind, obj, event_id)
    assert snapshot is not None
    return _subscription(session, settings, tenant, snapshot, created, fetched, event_id)


def _subscription(session: Session, settings: Settings, tenant: Tenant, sub: Mapping[str, Any],
                  created: datetime, fetched: bool, event_id: str) -> Applied:
    """Make the tenant follow one state of its subscription, unless a newer one was applied."""
    assert tenant.id is not None
    sub_id, status = str(sub["id"]), str(sub.get("status"))
    applied_at = _aware(tenant.subscription_event_at)
    current = tenant.stripe_subscription_id
    if not fetched and applied_at is not None and created < applied_at and current == sub_id:
        return Applied(event_id, f"stale: {sub_id} {status} from {created:%H:%M:%S}, "
                       f"a newer state was applied", tenant.id)
    holder = session.exec(select(Tenant.id).where(Tenant.stripe_subscription_id == sub_id)).first()
    if holder is not None and holder != tenant.id:
        return Applied(event_id, f"ignored: {sub_id} belongs to tenant {holder}", tenant.id)
    if current is not None and current != sub_id:
        if status in ENDED:
            return Applied(event_id, f"ignored: {sub_id} ended; the tenant is on {current}", tenant.id)
        if tenant.subscription_status in PAID and applied_at is not None and created < applied_at:
            return Applied(event_id, f"stale: {sub_id} is older than {current}", tenant.id)
    if current == sub_id and tenant.subscription_status in ENDED and status not in ENDED:
        return Applied(event_id, f"stale: {sub_id} was cancelled and cannot come back", tenant.id)
    if sub.get("customer") and not tenant.stripe_customer_id:
        customer = sub["customer"]
        tenant.stripe_customer_id = str(customer["id"] if isinstance(customer, Mapping) else customer)
    before = (tenant.plan.value, tenant.billing_status.value, tenant.subscription_status)
    result = Applied(event_id, "", tenant.id)
    tenant.stripe_subscription_id = sub_id
    tenant.subscription_status = status
    tenant.subscription_event_at = max(created, applied_at) if applied_at else created
    tenant.current_period_end = _period_end(sub)
    plan = subscription_plan(sub)
    if status in PAID:  # an unpaid subscription's upgrade gives nothing until it is paid
        if plan is not None and plan != tenant.plan.value:
            tenant.plan = Plan(plan)
            result.plan_changed = True
        if tenant.billing_status is not BillingStatus.ACTIVE:
            if tenant.billing_status is not BillingStatus.TRIALING:
                result.mails.append(_notice(session, settings, tenant, "reactivated"))
            _reactivate(session, tenant, result)
        tenant.trial_ends_at = None
    elif plan is not None and _rank(plan) < _rank(tenant.plan.value):  # a downgrade is never held back
        tenant.plan = Plan(plan)
        result.plan_changed = True
    if status in UNPAID | ENDED and tenant.billing_status in (BillingStatus.ACTIVE, BillingStatus.TRIALING):
        tenant.billing_status = BillingStatus.PAST_DUE
        tenant.lapsed_at = created
        why = "the subscription ended" if status in ENDED else "a payment failed"
        result.mails.append(_notice(session, settings, tenant, "past_due", why))
    after = (tenant.plan.value, tenant.billing_status.value, tenant.subscription_status)
    details: dict[str, Any] = {"subscription": sub_id, "event": event_id,
                               "from": "/".join(str(x) for x in before), "to": "/".join(after)}
    if result.plan_changed:
        details["over_limit"] = _over_limit(session, tenant)
    record(session, "billing.subscription", tenant_id=None, target=f"tenant:{tenant.id}", details=details)
    result.outcome = (f"applied: {sub_id} {status}, plan {tenant.plan.value}, "
                      f"billing {tenant.billing_status.value}")
    return result


def _rank(plan: str) -> int:
    """Plans from the smallest (Starter) up, as `PLANS` lists them."""
    return list(PLANS).index(plan)


def _reactivate(session: Session, tenant: Tenant, result: Applied) -> None:
    """Back to active: the dunning clock stops, and a suspension made by billing (not one made by a
    platform admin) ends, the caller starting the engine again."""
    assert tenant.id is not None
    step_from = tenant.billing_status
    if step_from is BillingStatus.SUSPENDED and tenant.status is TenantStatus.SUSPENDED:
        tenant.status = TenantStatus.ACTIVE
        result.resume = True
    tenant.billing_status = BillingStatus.ACTIVE
    tenant.lapsed_at = None
    action = "billing.reactivated" if step_from is not BillingStatus.TRIALING else "billing.subscribed"
    record(session, action, tenant_id=None, target=f"tenant:{tenant.id}", details={"from": step_from.value})


def _invoice(session: Session, settings: Settings, tenant: Tenant, kind: str, invoice: Mapping[str, Any],
             event_id: str) -> Applied:
    assert tenant.id is not None
    result = Applied(event_id, "", tenant.id)
    amount = invoice.get("amount_due") if kind == "invoice.payment_failed" else invoice.get("amount_paid")
    details = {"invoice": invoice.get("id"), "amount_minor": amount, "currency": invoice.get("currency"),
               "event": event_id}
    if kind == "invoice.payment_failed":
        record(session, "billing.payment_failed", tenant_id=None, target=f"tenant:{tenant.id}",
               details=details)
        link = invoice.get("hosted_invoice_url")
        why = f"pay the invoice at {link}" if link else "Stripe e-mails the invoice to pay"
        result.mails.append(_notice(session, settings, tenant, "payment_failed", why))
        result.outcome = f"payment failed: {invoice.get('id')}"
    else:
        record(session, "billing.invoice_paid", tenant_id=None, target=f"tenant:{tenant.id}", details=details)
        result.outcome = f"invoice paid: {invoice.get('id')}"
    return result


def _over_limit(session: Session, tenant: Tenant) -> str:
    """'' when the tenant's stored usage fits its plan, else the reason (the engine then closes the
    newest connections the plan has no room for)."""
    assert tenant.id is not None
    servers, accounts = stored_usage(session, tenant.id)
    try:
        check_usage(tenant.plan.value, servers, accounts)
    except PlanLimitExceeded as exc:
        return str(exc)
    return ""


def admin_emails(session: Session, tenant_id: int) -> tuple[str, ...]:
    """Where billing notices go: the tenant's active administrators."""
    admins = session.exec(select(User.email).where(
        User.tenant_id == tenant_id, User.role == Role.TENANT_ADMIN, col(User.is_active).is_(True)))
    return tuple(sorted(admins.all()))


NOTICES = {
    "past_due": ("Veles: your payment is past due",
                 "Your Veles subscription is past due ({why}). Everything keeps working for {grace} "
                 "days; then the portal turns read-only, and after {suspend} days the engine stops "
                 "(your data is kept). Pay the open invoice (Stripe e-mails its link) to stop this."),
    "payment_failed": ("Veles: a payment failed",
                       "A payment for your Veles subscription failed: {why}."),
    "read_only": ("Veles: your portal is read-only",
                  "Your Veles subscription is {days} days past due, so your portal is read-only: live "
                  "figures stay, but changes are refused until payment. The engine stops after "
                  "{suspend} days. Pay the open invoice (Stripe e-mailed its link) to restore it."),
    "suspended": ("Veles: your account is suspended",
                  "Your Veles subscription is {days} days past due: the engine is stopped and sign-in "
                  "is closed; your data is kept. Paying the open invoice reactivates it at once."),
    "reactivated": ("Veles: your account is active again",
                    "Thank you: your payment was received and your Veles account is active again."),
}


def _notice(session: Session, settings: Settings, tenant: Tenant, step: str, why: str = "", days: int = 0
            ) -> Mail:
    assert tenant.id is not None
    subject, text = NOTICES[step]
    return Mail(admin_emails(session, tenant.id), subject, text.format(
        why=why, grace=settings.billing_grace_days, suspend=settings.billing_suspend_days, days=days,
        portal=settings.portal_url))


def _send(settings: Settings, mail: Mail) -> None:
    if not mail.to:
        return
    try:
        messaging.send_email(settings, list(mail.to), mail.subject, mail.text)
    except (messaging.MessagingError, ValueError):
        log.exception("billing notice %r to %s not sent", mail.subject, ", ".join(mail.to))


def send_mails(settings: Settings, mails: list[Mail]) -> None:
    """Send notices made by a step (after its commit)."""
    for mail in mails:
        _send(settings, mail)


def plan_limits_text(plan: str) -> str:
    limits = PLANS[plan]
    servers = "unlimited" if limits.max_servers is None else str(limits.max_servers)
    accounts = "unlimited" if limits.max_accounts is None else f"{limits.max_accounts:,}"
    return f"{limits.name}: {servers} MT5 server(s), {accounts} accounts"
