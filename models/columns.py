"""Column types shared by every table, chosen to behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, DateTime, Enum, Integer
from sqlmodel import SQLModel

# Named constraints: Alembic can only alter or drop what has a name, and SQLite (batch mode)
# and PostgreSQL then agree on every name. Set before the first table is declared.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timestamps are stored in UTC; screens convert to the user's zone."""
    return datetime.now(UTC)


# `timestamp with time zone` on PostgreSQL, so an aware UTC datetime is never shifted by the
# server's TimeZone; SQLite stores the ISO text.
UtcDateTime = DateTime(timezone=True)

# JSON, not JSONB: the one type both databases understand; nothing queries inside these documents.
Json = JSON()

# Ids of tables that grow by the minute (risk history, audit) outgrow 2**31; SQLite only
# auto-increments an `INTEGER PRIMARY KEY`, hence the variant.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def enum_column(enum: type[StrEnum]) -> Enum:
    """A VARCHAR holding the enum's *values*, without a native PostgreSQL ENUM type or CHECK.

    Native enums need `ALTER TYPE` migrations for every new member and differ between the two
    databases; validation happens in Python when rows are built.
    """
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=32,  # room for members added later without a column migration
        values_callable=lambda members: [member.value for member in members],
    )
