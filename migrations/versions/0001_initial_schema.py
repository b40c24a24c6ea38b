"""Initial schema: every table, and on PostgreSQL the `veles_app` role and row-level security.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import app_role_statements, sequence_statements, tenant_table_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column(
            "plan",
            sa.Enum("starter", "professional", "enterprise", name="plan", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("active", "suspended", "closed", name="tenantstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("stripe_customer_id", sa.String(length=64), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant")),
        sa.UniqueConstraint("domain", name=op.f("uq_tenant_domain")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_tenant_stripe_customer_id")),
        sa.UniqueConstraint("stripe_subscription_id", name=op.f("uq_tenant_stripe_subscription_id")),
    )
    op.create_index(op.f("ix_tenant_name"), "tenant", ["name"], unique=True)

    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "margin_level",
                "equity_drop",
                "exposure",
                "floating_loss",
                "toxic_flow",
                name="alertkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column(
            "severity",
            sa.Enum("info", "warning", "critical", name="severity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_alert_rule_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_alert_rule_tenant_id_id")),
    )
    op.create_index(op.f("ix_alert_rule_tenant_id"), "alert_rule", ["tenant_id"], unique=False)

    op.create_table(
        "mt5_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column(
            "platform", sa.Enum("mt4", "mt5", name="platform", native_enum=False, length=32), nullable=False
        ),
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "connected",
                "disconnected",
                "failed",
                "disabled",
                name="connectionstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("last_connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_mt5_connection_tenant_id_tenant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mt5_connection")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_mt5_connection_tenant_id_id")),
        sa.UniqueConstraint(
            "tenant_id", "server", "login", name=op.f("uq_mt5_connection_tenant_id_server_login")
        ),
    )
    op.create_index(op.f("ix_mt5_connection_tenant_id"), "mt5_connection", ["tenant_id"], unique=False)

    op.create_table(
        "risk_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_login", sa.BigInteger(), nullable=True),
        sa.Column("book", sa.Enum("A", "B", name="book", native_enum=False, length=32), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("margin_level", sa.Float(), nullable=True),
        sa.Column("floating", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_risk_history_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_history")),
    )
    op.create_index(op.f("ix_risk_history_tenant_id"), "risk_history", ["tenant_id"], unique=False)
    op.create_index(
        "ix_risk_history_tenant_id_account_login_ts",
        "risk_history",
        ["tenant_id", "account_login", "ts"],
        unique=False,
    )
    op.create_index("ix_risk_history_tenant_id_ts", "risk_history", ["tenant_id", "ts"], unique=False)

    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "platform_admin",
                "tenant_admin",
                "risk_manager",
                "viewer",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "two_factor",
            sa.Enum("none", "totp", "sms", name="twofactor", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("totp_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_user_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_user_tenant_id_id")),
    )
    op.create_index(op.f("ix_user_email"), "user", ["email"], unique=True)
    op.create_index(op.f("ix_user_tenant_id"), "user", ["tenant_id"], unique=False)

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column(
            "severity",
            sa.Enum("info", "warning", "critical", name="severity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column(
            "state",
            sa.Enum("open", "acknowledged", "resolved", name="alertstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "acknowledged_by"],
            ["user.tenant_id", "user.id"],
            name=op.f("fk_alert_tenant_id_acknowledged_by_user"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["alert_rule.tenant_id", "alert_rule.id"],
            name=op.f("fk_alert_tenant_id_rule_id_alert_rule"),
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_alert_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    op.create_index(op.f("ix_alert_created_at"), "alert", ["created_at"], unique=False)
    op.create_index(op.f("ix_alert_rule_id"), "alert", ["rule_id"], unique=False)
    op.create_index(op.f("ix_alert_state"), "alert", ["state"], unique=False)
    op.create_index(op.f("ix_alert_tenant_id"), "alert", ["tenant_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_user_id"], ["user.id"], name=op.f("fk_audit_log_actor_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_audit_log_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_tenant_id"), "audit_log", ["tenant_id"], unique=False)
    op.create_index("ix_audit_log_tenant_id_at", "audit_log", ["tenant_id", "at"], unique=False)

    op.create_table(
        "client_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("group", sa.String(length=64), nullable=False),
        sa.Column("book", sa.Enum("A", "B", name="book", native_enum=False, length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["mt5_connection.tenant_id", "mt5_connection.id"],
            name=op.f("fk_client_account_tenant_id_connection_id_mt5_connection"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_client_account_tenant_id_tenant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_account")),
        sa.UniqueConstraint(
            "tenant_id",
            "connection_id",
            "login",
            name=op.f("uq_client_account_tenant_id_connection_id_login"),
        ),
    )
    op.create_index(
        op.f("ix_client_account_connection_id"), "client_account", ["connection_id"], unique=False
    )
    op.create_index(op.f("ix_client_account_login"), "client_account", ["login"], unique=False)
    op.create_index(op.f("ix_client_account_tenant_id"), "client_account", ["tenant_id"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "daily_risk",
                "exposure",
                "toxic_accounts",
                "alert_history",
                name="reporttype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued", "running", "ready", "failed", name="reportstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("file_location", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "requested_by"],
            ["user.tenant_id", "user.id"],
            name=op.f("fk_report_tenant_id_requested_by_user"),
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_report_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
    )
    op.create_index(op.f("ix_report_status"), "report", ["status"], unique=False)
    op.create_index(op.f("ix_report_tenant_id"), "report", ["tenant_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        secure_tenant_tables()


TENANT_TABLES = ["user", "mt5_connection", "client_account", "alert_rule", "alert", "report", "risk_history"]
SEQUENCES = [f"{table}_id_seq" for table in [*TENANT_TABLES, "audit_log"]]


def secure_tenant_tables() -> None:
    """Row-level security as of this revision (SQLite has none; the app filters there)."""
    statements = app_role_statements()
    for table in TENANT_TABLES:
        statements += tenant_table_statements(table)
    statements += tenant_table_statements("audit_log", append_only=True)
    # A tenant may read its own tenant row (plan, status) and nothing else there.
    statements += [s for s in tenant_table_statements("tenant", key="id") if not s.startswith("GRANT")]
    statements += ["GRANT SELECT ON tenant TO veles_app", *sequence_statements(SEQUENCES)]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    """Drops every table; the cluster-wide `veles_app` role stays, other databases may use it."""
    op.drop_index(op.f("ix_report_tenant_id"), table_name="report")
    op.drop_index(op.f("ix_report_status"), table_name="report")

    op.drop_table("report")
    op.drop_index(op.f("ix_client_account_tenant_id"), table_name="client_account")
    op.drop_index(op.f("ix_client_account_login"), table_name="client_account")
    op.drop_index(op.f("ix_client_account_connection_id"), table_name="client_account")

    op.drop_table("client_account")
    op.drop_index("ix_audit_log_tenant_id_at", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_tenant_id"), table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_index(op.f("ix_alert_tenant_id"), table_name="alert")
    op.drop_index(op.f("ix_alert_state"), table_name="alert")
    op.drop_index(op.f("ix_alert_rule_id"), table_name="alert")
    op.drop_index(op.f("ix_alert_created_at"), table_name="alert")

    op.drop_table("alert")
    op.drop_index(op.f("ix_user_tenant_id"), table_name="user")
    op.drop_index(op.f("ix_user_email"), table_name="user")

    op.drop_table("user")
    op.drop_index("ix_risk_history_tenant_id_ts", table_name="risk_history")
    op.drop_index("ix_risk_history_tenant_id_account_login_ts", table_name="risk_history")
    op.drop_index(op.f("ix_risk_history_tenant_id"), table_name="risk_history")

    op.drop_table("risk_history")
    op.drop_index(op.f("ix_mt5_connection_tenant_id"), table_name="mt5_connection")

    op.drop_table("mt5_connection")
    op.drop_index(op.f("ix_alert_rule_tenant_id"), table_name="alert_rule")

    op.drop_table("alert_rule")
    op.drop_index(op.f("ix_tenant_name"), table_name="tenant")

    op.drop_table("tenant")
