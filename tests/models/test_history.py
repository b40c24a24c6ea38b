"""Risk history retention: pruning removes one tenant's old points and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, func, select

from models.db import get_engine, session_scope, tenant_session, upgrade
from models.history import RiskHistory, history_bucket, prune_history
from models.tenancy import Tenant

START = datetime(2026, 3, 1, tzinfo=UTC)


def point(tenant_id: int, minutes: int, login: int | None = 7) -> RiskHistory:
    return RiskHistory(
        tenant_id=tenant_id,
        account_login=login,
        ts=START + timedelta(minutes=minutes),
        equity=1.0,
        balance=1.0,
        margin=0.5,
        margin_level=200.0,
        floating=0.0,
    )


def seed(url: str) -> tuple[int, int]:
    upgrade(url)
    with session_scope(url) as db:
        a, b = Tenant(name="A"), Tenant(name="B")
        db.add_all([a, b])
        db.flush()
        assert a.id is not None
        assert b.id is not None
        db.add_all([point(t, m, login) for t in (a.id, b.id) for m in range(10) for login in (7, None)])
        return a.id, b.id


def counts(url: str) -> dict[int, int]:
    with Session(get_engine(url)) as db:
        rows = db.exec(select(RiskHistory.tenant_id, func.count()).group_by(col(RiskHistory.tenant_id))).all()
        return dict(rows)


def test_prune_removes_only_that_tenants_old_points(database_url: str) -> None:
    a, b = seed(database_url)
    with tenant_session(database_url, a) as db:  # SQLite: plain session, the helper's filter is the wall
        assert prune_history(db, a, older_than=START + timedelta(minutes=4)) == 8  # 4 minutes x 2 series
    assert counts(database_url) == {a: 12, b: 20}


def test_prune_runs_inside_a_tenant_session_under_rls(migrated_pg_url: str) -> None:
    a, b = seed(migrated_pg_url)
    with tenant_session(migrated_pg_url, a) as db:
        assert prune_history(db, b, older_than=START + timedelta(days=1)) == 0  # B is out of reach
        assert prune_history(db, a, older_than=START + timedelta(days=1)) == 20
    assert counts(migrated_pg_url) == {b: 20}


def test_points_fall_into_minute_buckets() -> None:
    assert history_bucket(START + timedelta(seconds=59, microseconds=5)) == START
    assert history_bucket(START + timedelta(minutes=1)) == START + timedelta(minutes=1)
