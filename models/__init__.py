"""SQLModel tables and the database engine. Below every other layer: imports nothing of Veles'.

Importing this package registers every table on `SQLModel.metadata`, which Alembic and the
tenant-isolation test both read.
"""

from models.accounts import Book, ClientAccount
from models.alerts import (
    Alert,
    AlertKind,
    AlertReader,
    AlertRule,
    AlertState,
    EscalationPolicy,
    Severity,
    TenantCounter,
)
from models.audit import AuditLog
from models.auth import LoginChallenge, RefreshToken
from models.billing import BillingEvent, BillingStatus
from models.connections import ConnectionStatus, Mt5Connection, Platform
from models.deals import DealRecord
from models.history import RiskHistory
from models.invitations import Invitation
from models.market import DailyClose
from models.notifications import Channel, Delivery, DeliveryPreference, DeliveryStatus
from models.reports import Report, ReportStatus, ReportType
from models.stress import StressScenario
from models.tenancy import Plan, Role, Tenant, TenantStatus, TwoFactor, User

__all__ = [
    "Alert",
    "AlertKind",
    "AlertReader",
    "AlertRule",
    "AlertState",
    "AuditLog",
    "BillingEvent",
    "BillingStatus",
    "Book",
    "Channel",
    "ClientAccount",
    "ConnectionStatus",
    "DailyClose",
    "DealRecord",
    "Delivery",
    "DeliveryPreference",
    "DeliveryStatus",
    "EscalationPolicy",
    "Invitation",
    "LoginChallenge",
    "Mt5Connection",
    "Plan",
    "Platform",
    "RefreshToken",
    "Report",
    "ReportStatus",
    "ReportType",
    "RiskHistory",
    "Role",
    "Severity",
    "StressScenario",
    "Tenant",
    "TenantCounter",
    "TenantStatus",
    "TwoFactor",
    "User",
]
