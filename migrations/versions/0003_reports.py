"""Reports: the four report types, claim/lease columns for workers, report schedules and their runs.

Revision ID: 0003_reports
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0003_reports"
down_revision = "0001"
branch_labels = None
depends_on = None

REPORT_TYPES = ("daily_risk", "exposure", "account_statement", "alerts_log")
FORMATS = ("pdf", "xlsx")


def _enum(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    # The type column is a VARCHAR(32) without a CHECK: renaming members only rewrites rows.
    op.execute("UPDATE report SET type = 'alerts_log' WHERE type = 'alert_history'")
    op.execute(
        "UPDATE report SET status = 'failed', error = 'The toxic accounts report was retired.' "
        "WHERE type = 'toxic_accounts' AND status IN ('queued', 'running')"
    )
    with op.batch_alter_table("report") as batch:
        batch.alter_column("type", existing_type=_enum("daily_risk", "exposure", "toxic_accounts",
                                                       "alert_history", name="reporttype"),
                           type_=_enum(*REPORT_TYPES, name="reporttype"), existing_nullable=False)
        batch.add_column(sa.Column("format", _enum(*FORMATS, name="reportformat"), nullable=False,
                                   server_default="pdf"))
        batch.add_column(sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("period_end", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("schedule_run_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("report") as batch:
        for column in ("format", "time_zone", "attempts"):
            batch.alter_column(column, server_default=None)

    op.create_table(
        "report_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("type", _enum(*REPORT_TYPES, name="reporttype"), nullable=False),
        sa.Column("format", _enum(*FORMATS, name="reportformat"), nullable=False),
        sa.Column("frequency", _enum("daily", "weekly", name="frequency"), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "created_by"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_report_schedule_tenant_id_created_by_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_report_schedule_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_schedule")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_report_schedule_tenant_id_id")),
    )
    op.create_index(op.f("ix_report_schedule_tenant_id"), "report_schedule", ["tenant_id"], unique=False)

    op.create_table(
        "schedule_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", _enum("queued", "sending", "sent", "failed", name="runstatus"), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "schedule_id"],
                                ["report_schedule.tenant_id", "report_schedule.id"],
                                name=op.f("fk_schedule_run_tenant_id_schedule_id_report_schedule")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_schedule_run_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_run")),
        sa.UniqueConstraint("schedule_id", "period_start",
                            name=op.f("uq_schedule_run_schedule_id_period_start")),
    )
    op.create_index(op.f("ix_schedule_run_schedule_id"), "schedule_run", ["schedule_id"], unique=False)
    op.create_index(op.f("ix_schedule_run_tenant_id"), "schedule_run", ["tenant_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        tables = ["report_schedule", "schedule_run"]
        statements = [s for table in tables for s in tenant_table_statements(table)]
        for statement in [*statements, *sequence_statements([f"{table}_id_seq" for table in tables])]:
            op.execute(statement)


def downgrade() -> None:
    op.drop_index(op.f("ix_schedule_run_tenant_id"), table_name="schedule_run")
    op.drop_index(op.f("ix_schedule_run_schedule_id"), table_name="schedule_run")
    op.drop_table("schedule_run")
    op.drop_index(op.f("ix_report_schedule_tenant_id"), table_name="report_schedule")
    op.drop_table("report_schedule")
    with op.batch_alter_table("report") as batch:
        for column in ("lease_until", "claimed_by", "attempts", "schedule_run_id", "time_zone",
                       "period_end", "period_start", "format"):
            batch.drop_column(column)
    op.execute("UPDATE report SET type = 'alert_history' WHERE type = 'alerts_log'")
